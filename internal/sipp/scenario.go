package sipp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Scenario is a SIPp XML scenario file, as a path relative to the root of
// this repository (the folder holding go.mod), or an absolute path.
type Scenario string

// The committed scenarios; each file's header says what it proves.
const (
	UACInvite      Scenario = "testdata/sipp/uac_invite.xml"        // INVITE, 200, ACK and BYE along the Record-Route set
	UACInviteAuth  Scenario = "testdata/sipp/uac_invite_auth.xml"   // the same after a 407 challenge
	UACInvitePad   Scenario = "testdata/sipp/uac_invite_padded.xml" // the same with an X-Pad header of Vars["pad"]
	UACCancel      Scenario = "testdata/sipp/uac_cancel.xml"        // INVITE, 180, CANCEL, 200 and 487
	UACExpect      Scenario = "testdata/sipp/uac_expect.xml"        // INVITE refused with the status in Vars["expect"]
	UACMessage     Scenario = "testdata/sipp/uac_message.xml"       // MESSAGE, 200
	UACMessageAuth Scenario = "testdata/sipp/uac_message_auth.xml"  // MESSAGE, 407, MESSAGE with digest, 200 or 202
	OptionsProbe   Scenario = "testdata/sipp/uac_options.xml"       // OPTIONS, 200: a health probe
	RegisterAuth   Scenario = "testdata/sipp/register_auth.xml"     // REGISTER, 401, REGISTER, 200 with the binding
	Unregister     Scenario = "testdata/sipp/unregister.xml"        // REGISTER Contact: * Expires: 0, with digest
	UAS            Scenario = "testdata/sipp/uas.xml"               // answers INVITE, MESSAGE and OPTIONS
	UAS503         Scenario = "testdata/sipp/uas_503.xml"           // refuses INVITE with 503
	UASRing        Scenario = "testdata/sipp/uas_ring.xml"          // rings until CANCEL, then 487
	UASMessage     Scenario = "testdata/sipp/uas_message.xml"       // answers MESSAGE (text/plain) and OPTIONS
	UASAuth        Scenario = "testdata/sipp/uas_auth.xml"          // stand-in: challenges INVITE with 407, then answers
	RegistrarAuth  Scenario = "testdata/sipp/registrar_auth.xml"    // stand-in registrar checking MD5 digest

	// The same with the caller and its credentials from UACOptions.Users,
	// the next device each call.
	UACInviteAuthUsers  Scenario = "testdata/sipp/uac_invite_auth_users.xml"
	UACMessageAuthUsers Scenario = "testdata/sipp/uac_message_auth_users.xml"
	RegisterAuthUsers   Scenario = "testdata/sipp/register_auth_users.xml"
)

// ErrNoRepoRoot is returned when no go.mod is found above the working
// directory, so relative scenarios cannot be resolved.
var ErrNoRepoRoot = errors.New("sipp: no go.mod in the working directory or above it; run from inside the repository")

// RepoRoot returns the nearest folder at or above the working directory
// that holds a go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("sipp: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoRepoRoot
		}
		dir = parent
	}
}

// Path returns the scenario's absolute path, checking that the file exists.
func (s Scenario) Path() (string, error) {
	path := string(s)
	if !filepath.IsAbs(path) {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		path = filepath.Join(root, path)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("sipp: scenario %s: %w", s, err)
	}
	return path, nil
}

// Name is the scenario's file name without its folder and extension.
func (s Scenario) Name() string {
	return strings.TrimSuffix(filepath.Base(string(s)), filepath.Ext(string(s)))
}

var globalRE = regexp.MustCompile(`<Global\s+variables="([^"]*)"`)

// Globals lists the variables the scenario declares with <Global>: the
// only ones `-set NAME VALUE` may set.
func (s Scenario) Globals() ([]string, error) {
	text, err := s.read()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range globalRE.FindAllStringSubmatch(text, -1) {
		for name := range strings.SplitSeq(m[1], ",") {
			if name = strings.TrimSpace(name); name != "" {
				names = append(names, name)
			}
		}
	}
	return names, nil
}

// registers reports whether the scenario sends REGISTER requests.
func (s Scenario) registers() (bool, error) {
	text, err := s.read()
	if err != nil {
		return false, err
	}
	return strings.Contains(text, "REGISTER sip:"), nil
}

func (s Scenario) read() (string, error) {
	path, err := s.Path()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("sipp: scenario %s: %w", s, err)
	}
	return string(b), nil
}
