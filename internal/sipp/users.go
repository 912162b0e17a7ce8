package sipp

import (
	"bufio"
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
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sipp: %w", err)
	}
	w := bufio.NewWriter(f)
	_, _ = w.WriteString("SEQUENTIAL\n")
	for _, u := range users {
		if strings.ContainsAny(u.Name+u.Password, ";\n\r") {
			_ = f.Close()
			return fmt.Errorf("sipp: injection file %s: user %q: a name or password with ';' or a line break", path, u.Name)
		}
		_, _ = w.WriteString(u.Name + ";" + u.Password + "\n")
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sipp: %w", err)
	}
	return f.Close()
}
