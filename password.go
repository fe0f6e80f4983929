package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"
)

// readPassword returns the password from --password-file, else from
// $DISTCHAT_PASSWORD, else from a no-echo prompt on the terminal (asked
// twice when confirm is set).
func readPassword(e *env, file, prompt string, confirm bool) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" {
			return "", fmt.Errorf("password file %s is empty", file)
		}
		return pw, nil
	}
	if pw := e.getenv("DISTCHAT_PASSWORD"); pw != "" {
		return pw, nil
	}
	if !e.stdinTTY {
		return "", errors.New("no password: give --password-file FILE or set DISTCHAT_PASSWORD (stdin is not a terminal, so there is no prompt)")
	}
	pw, err := promptNoEcho(e, prompt+": ")
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	if confirm {
		again, err := promptNoEcho(e, "Repeat it: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the two passwords differ")
		}
	}
	return pw, nil
}

// promptNoEcho prints prompt to stderr and reads a line from the terminal
// without echoing it.
func promptNoEcho(e *env, prompt string) (string, error) {
	fmt.Fprint(e.stderr, prompt)
	b, err := term.ReadPassword(e.stdinFD)
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}
