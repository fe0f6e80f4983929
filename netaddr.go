package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/distchat/distchat/rmi"
)

// centralAddrs parses --central: HOST:PORT, HOST (port 1099) or
// rmi://HOST[:PORT]/NAME, or several central servers of one cluster,
// comma-separated (a:1099,b:1099 or rmi://a,b/NAME). An IPv6 HOST is
// written in brackets, with or without a port: [::1]:2000 or [::1]. It
// returns the addresses as HOST:PORT, in the order given.
func centralAddrs(s string) ([]string, error) {
	addrs, _, err := rmi.ParseAddrList(s)
	if err != nil {
		return nil, fmt.Errorf("central address %q: %w", s, err)
	}
	return addrs, nil
}

// advertiseAddr returns the address others should use to reach a
// listener: advertise if given; else the listen flag's host if it is
// explicit and not a wildcard; else the local IP this machine uses to reach
// towards (a UDP "dial" only picks a route; nothing is sent), or, with no
// towards, the IP of the default route. The port is the listener's.
func advertiseAddr(l net.Listener, listenFlag, advertise, towards string) (string, error) {
	if advertise != "" {
		host, port, err := net.SplitHostPort(advertise)
		if err != nil || host == "" || port == "" || port == "0" {
			return "", usagef("--advertise %q: want HOST:PORT with a host and a port", advertise)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return "", usagef("--advertise %q: %s is not an address others can reach", advertise, host)
		}
		return advertise, nil
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	host, _, err := net.SplitHostPort(listenFlag)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listenFlag, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return net.JoinHostPort(host, port), nil
	}
	if towards == "" {
		// A documentation-only address (TEST-NET-1): the route to it is
		// the default route.
		towards = "192.0.2.1:9"
	}
	ip, err := localIPTowards(towards)
	if err != nil {
		return "", fmt.Errorf("cannot tell which local address reaches %s (%v); give --advertise HOST:PORT", towards, err)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// localIPTowards returns the local IP address of the route to addr.
func localIPTowards(addr string) (net.IP, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || ua.IP.IsUnspecified() {
		return nil, fmt.Errorf("no local address for %s", addr)
	}
	return ua.IP, nil
}
