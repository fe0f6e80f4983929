package main

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestCentralAddr(t *testing.T) {
	cases := []struct {
		in, want string // want "" means an error
	}{
		{"10.0.0.5:2000", "10.0.0.5:2000"},
		{"chat.example", "chat.example:1099"},
		{"10.0.0.5", "10.0.0.5:1099"},
		{"[::1]:1099", "[::1]:1099"},
		{"[::1]", "[::1]:1099"},
		{"[fe80::1%eth0]", "[fe80::1%eth0]:1099"},
		{"rmi://10.0.0.5:2000/CentralServer", "10.0.0.5:2000"},
		{"rmi://chat.example/CentralServer", "chat.example:1099"},
		{"rmi://chat.example:77/CentralServer", "chat.example:77"},
		{"rmi://[::1]/CentralServer", "[::1]:1099"},
		{"::1", ""},                // IPv6 without brackets
		{"chat.example:77:78", ""}, // too many colons
		{"[::1]x", ""},             // junk after the brackets
		{"[::1", ""},               // no closing bracket
		{"rmi://chat.example", ""}, // no /NAME
		// Several central servers of one cluster.
		{"10.0.0.5:2000,10.0.0.6", "10.0.0.5:2000,10.0.0.6:1099"},
		{"rmi://a:77,[::1]/CentralServer", "a:77,[::1]:1099"},
		{"a,a:1099", ""}, // the same one twice
		{"a,", ""},       // an empty one
	}
	for _, c := range cases {
		addrs, err := centralAddrs(c.in)
		got := strings.Join(addrs, ",")
		switch {
		case c.want == "" && err == nil:
			t.Errorf("centralAddrs(%q) = %q, want an error", c.in, got)
		case c.want != "" && (err != nil || got != c.want):
			t.Errorf("centralAddrs(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestAdvertiseAddr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	want := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if got, err := advertiseAddr(l, "127.0.0.1:0", "", ""); err != nil || got != want {
		t.Errorf("explicit listen host: %q, %v; want %q", got, err, want)
	}
	if got, err := advertiseAddr(l, ":0", "", "127.0.0.1:1099"); err != nil || got != want {
		t.Errorf("route towards loopback: %q, %v; want %q", got, err, want)
	}
	if got, err := advertiseAddr(l, ":0", "chat.example:9000", ""); err != nil || got != "chat.example:9000" {
		t.Errorf("--advertise: %q, %v", got, err)
	}
	for _, bad := range []string{"0.0.0.0:9000", "chat.example", "chat.example:0"} {
		if _, err := advertiseAddr(l, ":0", bad, ""); err == nil {
			t.Errorf("--advertise %q accepted", bad)
		}
	}
}
