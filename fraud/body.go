package fraud

import "unicode"

// BodyHash is the hash of a message body's normalized text, for the
// same_body indicator: letters lower-cased, each run of digits one '#'
// (so "your code is 1234" and "Your code is 98765" are one text), each run
// of spaces and punctuation one space, the ends trimmed. It is never 0,
// except for a body with nothing left after normalizing.
func BodyHash(body []byte) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	var last rune = ' '
	n := 0
	emit := func(r rune) {
		if r == ' ' && last == ' ' || r == '#' && last == '#' {
			return
		}
		if last == ' ' && n > 0 {
			h = (h ^ ' ') * prime
		}
		last = r
		if r == ' ' {
			return
		}
		n++
		for _, b := range []byte(string(r)) {
			h = (h ^ uint64(b)) * prime
		}
	}
	for _, r := range string(body) {
		switch {
		case unicode.IsDigit(r):
			emit('#')
		case unicode.IsLetter(r):
			emit(unicode.ToLower(r))
		case unicode.IsSpace(r) || unicode.IsPunct(r):
			emit(' ')
		default:
			emit(r)
		}
	}
	if n == 0 {
		return 0
	}
	if h == 0 {
		h = 1
	}
	return h
}
