package node

import "errors"

// closers releases what a node acquired, in reverse order: each step of
// New that acquires something pushes how to release it, so that a failed
// step releases what the steps before it acquired, and closing the node
// releases everything, with the same list.
type closers []func() error

// push adds the release of what was just acquired.
func (c *closers) push(release func() error) { *c = append(*c, release) }

// close releases everything pushed, last first, once, and joins the
// errors.
func (c *closers) close() error {
	var errs []error
	for i := len(*c) - 1; i >= 0; i-- {
		errs = append(errs, (*c)[i]())
	}
	*c = nil
	return errors.Join(errs...)
}
