package sipp

import (
	"fmt"
	"os"
	"strings"
)

// User is one device of an injection file: [field0] is its name, [field1]
// its digest password.
type User struct {
	Name, Password string
}

// WriteUsers writes users as a SIPp injection file (-inf, UACOptions.Users)
// that hands them out in order, one per call, starting over after the last.
func WriteUsers(path string, users []User) error {
	if len(users) == 0 {
		return fmt.Errorf("sipp: injection file %s: no users", path)
	}
	b := []byte("SEQUENTIAL\n")
	for _, u := range users {
		if strings.ContainsAny(u.Name+u.Password, ";\n\r") {
			return fmt.Errorf("sipp: injection file %s: user %q: a name or password with ';' or a line break", path, u.Name)
		}
		b = append(b, u.Name+";"+u.Password+"\n"...)
	}
	if err := os.WriteFile(path, b, 0o666); err != nil {
		return fmt.Errorf("sipp: %w", err)
	}
	return nil
}
