package central

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/distchat/distchat/central/centralapi"
)

// Name and secret rules.
const (
	// MinPasswordLen and MaxPasswordLen bound a password's length in bytes.
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

// validName reports whether s is 1 to max bytes, its first a letter or
// digit (upper case letters only if upper), the others also any of
// punct. It is the regular expression ^[a-z0-9][a-z0-9<punct>]{0,max-1}$
// (with A-Z if upper), written out: chat servers check the names in every
// message they are forwarded, and a regexp match was 1.8% of their CPU.
func validName(s string, max int, upper bool, punct string) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case upper && 'A' <= c && c <= 'Z':
		case i > 0 && strings.IndexByte(punct, c) >= 0:
		default:
			return false
		}
	}
	return true
}

// tokenLen is the length of a session token: 32 random bytes in hex.
const tokenLen = 64

// q quotes s for an error message, cutting it short so a hostile caller
// cannot make us build huge error strings.
func q(s string) string {
	const max = 70
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// ValidServerName reports whether s is a valid chat server name: 1 to 32
// of a-z, 0-9 and '-', not starting with '-'.
func ValidServerName(s string) bool { return validName(s, 32, false, "-") }

// ValidUserName reports whether s is a valid user name:
// ^[a-z0-9][a-z0-9_.-]{0,31}$.
func ValidUserName(s string) bool { return validName(s, 32, false, "_.-") }

// ValidRoomName reports whether s is a valid name for a (non-direct) room:
// ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$.
func ValidRoomName(s string) bool { return validName(s, 64, true, "_.-") }

// ParseDirectRoomName returns the two users of a canonical direct room
// name, sorted, and whether name is one.
func ParseDirectRoomName(name string) (a, b string, ok bool) {
	rest, found := strings.CutPrefix(name, centralapi.DirectPrefix)
	if !found {
		return "", "", false
	}
	a, b, found = strings.Cut(rest, ":")
	if !found || !ValidUserName(a) || !ValidUserName(b) || a >= b {
		return "", "", false
	}
	return a, b, true
}

func checkUser(name string) error {
	if !ValidUserName(name) {
		return fmt.Errorf("user name %s (want 1-32 of a-z 0-9 _ . -, starting with a letter or digit): %w", q(name), centralapi.ErrBadName)
	}
	return nil
}

// checkRoom validates the name of a room that can be created, joined or
// left by name: not a direct room.
func checkRoom(name string) error {
	if strings.HasPrefix(name, centralapi.DirectPrefix) {
		return fmt.Errorf("room %s: %w", q(name), centralapi.ErrDirectRoom)
	}
	if !ValidRoomName(name) {
		return fmt.Errorf("room name %s (want 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit): %w", q(name), centralapi.ErrBadName)
	}
	return nil
}

// checkAnyRoom validates a room name that may also be a direct room's.
func checkAnyRoom(name string) error {
	if strings.HasPrefix(name, centralapi.DirectPrefix) {
		if _, _, ok := ParseDirectRoomName(name); !ok {
			return fmt.Errorf("direct room name %s (want %s<user>:<user>, sorted): %w", q(name), centralapi.DirectPrefix, centralapi.ErrBadName)
		}
		return nil
	}
	return checkRoom(name)
}

func checkPassword(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return fmt.Errorf("password of %d bytes: %w", len(pw), centralapi.ErrWeakPassword)
	}
	return nil
}

func checkServer(name string) error {
	if !ValidServerName(name) {
		return fmt.Errorf("server name %s (want 1-32 of a-z 0-9 -, starting with a letter or digit): %w", q(name), centralapi.ErrBadName)
	}
	return nil
}

func checkAddr(what, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n <= 0 || n > 65535) {
			err = fmt.Errorf("port %d out of range", n)
		}
	}
	if err == nil && host == "" {
		err = errors.New("no host; advertise an address other machines can reach")
	}
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsUnspecified() {
		err = fmt.Errorf("unspecified host %s; advertise an address other machines can reach", host)
	}
	if err != nil {
		return fmt.Errorf("%s address %s: %v: %w", what, q(addr), err, centralapi.ErrBadAddress)
	}
	return nil
}

// sessionKey validates a session token and returns the key it is stored
// under: its SHA-256. Tokens are never stored or logged in clear.
func sessionKey(token string) (string, error) {
	if len(token) != tokenLen {
		return "", fmt.Errorf("malformed token: %w", centralapi.ErrBadSession)
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", fmt.Errorf("malformed token: %w", centralapi.ErrBadSession)
		}
	}
	sum := sha256.Sum256([]byte(token))
	return string(sum[:]), nil
}

// shortID is a loggable identifier of a session: a prefix of its key's hex
// (the key is a hash, so this reveals nothing about the token).
func shortID(key string) string {
	return hex.EncodeToString([]byte(key))[:12]
}
