package events

import (
	"fmt"
	"strconv"
	"strings"
)

// Store keys. Account ids hold no '/' (checkAccount), so each prefix below
// selects one account's records and nothing else. No other package writes
// under these prefixes.
//
//	evhead/<account>        the account's last event (its head): its Seq is
//	                        the stream's length; compare-and-set on it
//	                        orders appends from every node
//	evlog/<account>/<seq>   every earlier event, seq zero-padded to 20
//	                        digits so that keys sort in sequence order
//	evhook/<account>        the webhook: URL, secret, delivery cursor and
//	                        the delivering node's lease
const (
	headPrefix = "evhead/"
	logPrefix  = "evlog/"
	hookPrefix = "evhook/"
)

func headKey(account string) string    { return headPrefix + account }
func logAccount(account string) string { return logPrefix + account + "/" }
func hookKey(account string) string    { return hookPrefix + account }
func slotKey(account string, seq uint64) string {
	return fmt.Sprintf("%s%020d", logAccount(account), seq)
}

// slotSeq reads the sequence number out of a slot key of account.
func slotSeq(account, key string) (uint64, bool) {
	s, ok := strings.CutPrefix(key, logAccount(account))
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
