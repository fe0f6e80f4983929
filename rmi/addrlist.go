package rmi

import (
	"fmt"
	"slices"
	"strings"
)

// ParseAddrList parses a list of servers that share one state (the central
// servers of a cluster) as a user writes it: "HOST[:PORT],HOST[:PORT],…",
// or the URL form "rmi://HOST[:PORT],HOST[:PORT],…/NAME" (the other forms of
// ParseURL work too). Each port defaults to DefaultPort and an IPv6 host
// goes in brackets ("[::1]:2000" or "[::1]"). It returns the addresses as
// "host:port", in the order given, and the URL's name ("" for the plain
// form). One address is a list of one.
func ParseAddrList(s string) (addrs []string, name string, err error) {
	hosts := s
	if strings.Contains(s, "/") {
		// The URL forms: rmi://HOSTS/NAME, //HOSTS/NAME or HOSTS/NAME.
		rest := s
		if i := strings.Index(s, "://"); i >= 0 {
			if !strings.EqualFold(s[:i], "rmi") {
				return nil, "", fmt.Errorf("rmi: bad URL %q: scheme must be rmi", s)
			}
			rest = s[i+3:]
		} else {
			rest = strings.TrimPrefix(s, "//")
		}
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			return nil, "", fmt.Errorf("rmi: bad URL %q: no /name", s)
		}
		hosts, name = rest[:slash], rest[slash+1:]
		if err := checkName(name); err != nil {
			return nil, "", fmt.Errorf("rmi: bad URL %q: name must be non-empty, without '/' or spaces", s)
		}
	}
	if strings.TrimSpace(hosts) == "" {
		return nil, "", fmt.Errorf("rmi: no address in %q", s)
	}
	for h := range strings.SplitSeq(hosts, ",") {
		addr, err := hostPort(strings.TrimSpace(h))
		if err != nil {
			return nil, "", fmt.Errorf("rmi: address %q in %q: %w", h, s, err)
		}
		if slices.Contains(addrs, addr) {
			return nil, "", fmt.Errorf("rmi: address %s twice in %q", addr, s)
		}
		addrs = append(addrs, addr)
	}
	return addrs, name, nil
}
