package rmi

import (
	"slices"
	"testing"
)

func TestParseAddrList(t *testing.T) {
	for _, tc := range []struct {
		in    string
		addrs []string
		name  string
	}{
		{"host", []string{"host:1099"}, ""},
		{"127.0.0.1:7000", []string{"127.0.0.1:7000"}, ""},
		{"a:7000,b,[::1],[::1]:7001", []string{"a:7000", "b:1099", "[::1]:1099", "[::1]:7001"}, ""},
		{"a:7000, b:7001", []string{"a:7000", "b:7001"}, ""},
		{"rmi://a:7000,b/CentralServer", []string{"a:7000", "b:1099"}, "CentralServer"},
		{"RMI://a/X", []string{"a:1099"}, "X"},
		{"//a:1,b:2/X", []string{"a:1", "b:2"}, "X"},
		{"a:1,b:2/X", []string{"a:1", "b:2"}, "X"},
	} {
		addrs, name, err := ParseAddrList(tc.in)
		if err != nil || !slices.Equal(addrs, tc.addrs) || name != tc.name {
			t.Errorf("ParseAddrList(%q) = %q, %q, %v; want %q, %q", tc.in, addrs, name, err, tc.addrs, tc.name)
		}
	}
	for _, bad := range []string{
		"", " ", "a,", ",a", "a,,b", "a:1,a:1", "a,a:1099", "a:0", "a:70000", "a:x", "::1", "a b",
		"rmi://a,b", "rmi://a,b/", "rmi:///X", "rmi://a,/X", "http://a/X", "rmi://a/X/Y",
	} {
		if addrs, name, err := ParseAddrList(bad); err == nil {
			t.Errorf("ParseAddrList(%q) = %q, %q; want an error", bad, addrs, name)
		}
	}
}
