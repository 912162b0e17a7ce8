package sipauth

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/switchboard-pbx/switchboard/clock"
)

// MinSecretLength is the shortest Config.Secret New accepts.
const MinSecretLength = 16

// Config configures an Authenticator. A zero field takes its default from
// DefaultConfig, except Secret, which has none.
type Config struct {
	// Secret keys the HMAC that makes nonces unforgeable. Required, at least
	// MinSecretLength bytes. A nonce is accepted only by the Authenticator
	// that issued it (its boot epoch is in the nonce), so nodes need not
	// share it; changing it makes every outstanding nonce stale.
	Secret []byte

	// NonceTTL is how long a nonce is good for; after it Verify answers
	// ErrStale and the caller challenges again with stale=true. Default 5
	// minutes: long enough for a REGISTER or INVITE round trip, short
	// enough that a captured nonce is soon useless.
	NonceTTL time.Duration

	// Clock tells the time of nonce issue and expiry. Default clock.Real{}.
	Clock clock.Clock

	// Rand supplies the random part of each nonce. Default crypto/rand.Reader.
	// The Authenticator serialises its reads, so any io.Reader will do.
	Rand io.Reader

	// ReplayWindow is how many nonces' highest nc the replay table keeps.
	// Default 65536 (a few MB). When it is full the nonce first seen
	// longest ago is forgotten, and every nonce issued no later than a
	// forgotten one is then answered ErrStale, so forgetting never lets a
	// replay through: it costs at most an extra challenge.
	ReplayWindow int
}

// DefaultConfig returns the defaults. Secret is left empty: the caller must
// set it.
func DefaultConfig() Config {
	return Config{
		NonceTTL:     5 * time.Minute,
		Clock:        clock.Real{},
		Rand:         rand.Reader,
		ReplayWindow: 65536,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.NonceTTL = cmp.Or(c.NonceTTL, d.NonceTTL)
	c.Clock = cmp.Or(c.Clock, d.Clock)
	c.Rand = cmp.Or(c.Rand, d.Rand)
	c.ReplayWindow = cmp.Or(c.ReplayWindow, d.ReplayWindow)
	return c
}

// Validate reports what is wrong with c. Zero fields other than Secret are
// valid: New fills them from DefaultConfig.
func (c Config) Validate() error {
	var errs []error
	if len(c.Secret) < MinSecretLength {
		errs = append(errs, fmt.Errorf("sipauth: Secret is %d bytes; set at least %d random bytes", len(c.Secret), MinSecretLength))
	}
	if c.NonceTTL < 0 {
		errs = append(errs, fmt.Errorf("sipauth: NonceTTL is %v; use a positive duration or 0 for the default", c.NonceTTL))
	}
	if c.ReplayWindow < 0 {
		errs = append(errs, fmt.Errorf("sipauth: ReplayWindow is %d; use a positive count or 0 for the default", c.ReplayWindow))
	}
	return errors.Join(errs...)
}
