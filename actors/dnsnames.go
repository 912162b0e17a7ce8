package actors

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-pbx/switchboard/persistence"
)

// AccountDNSName is account's DNS name, <account>.<zone>: the SIP domain
// of its devices, its digest realm and the name its nodes are found by.
func AccountDNSName(account, zone string) string { return account + "." + zone }

// ForwardingDNSName is the name through which account reaches feature,
// <feature>.<account>.<zone>. With ids that pass CheckLabelID, an account
// name has one label below the zone and a forwarding name two, the lower
// one its own account, so no name of one account equals or lies below a
// name of another.
func ForwardingDNSName(feature, account, zone string) string {
	return feature + "." + AccountDNSName(account, zone)
}

// InvalidID is a stored account or feature server whose id breaks
// CheckLabelID: a record written before the rule.
type InvalidID struct {
	// Kind is KindAccount or KindFeatureServer.
	Kind string
	// ID is the record's id.
	ID string
	// Err says what is wrong with it (CheckLabelID's error).
	Err error
}

// scanPage is the page size of FindInvalidIDs: an account's record is
// followed by its children, which the scan skips at the first one, so a
// small page reads little it does not need.
const scanPage = 16

// FindInvalidIDs returns the accounts and feature servers in store whose
// ids break CheckLabelID, in key order. It reads each account's record and
// at most one page of its children (it skips the rest with one jump), and
// every feature server: work grows with the number of accounts and
// features, not with their devices. On error it returns what it found so
// far with the error.
func FindInvalidIDs(ctx context.Context, store persistence.Store) ([]InvalidID, error) {
	var out []InvalidID
	const acct = "acct/"
	after := ""
	for {
		page, err := store.Scan(ctx, acct, after, scanPage)
		if err != nil {
			return out, err
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].Key
		for _, it := range page {
			id, _, isChild := strings.Cut(strings.TrimPrefix(it.Key, acct), "/")
			if isChild {
				// Every child key of id sorts before this cursor, and
				// every other key after it (keys are ASCII).
				after = accountChildren(id) + string(utf8.MaxRune)
				break
			}
			if err := CheckLabelID(id); err != nil {
				out = append(out, InvalidID{Kind: KindAccount, ID: id, Err: err})
			}
		}
	}
	const feat = "feat/"
	after = ""
	for {
		page, err := store.Scan(ctx, feat, after, persistence.DefaultScanLimit)
		if err != nil {
			return out, err
		}
		if len(page) == 0 {
			return out, nil
		}
		after = page[len(page)-1].Key
		for _, it := range page {
			id := strings.TrimPrefix(it.Key, feat)
			if err := CheckLabelID(id); err != nil {
				out = append(out, InvalidID{Kind: KindFeatureServer, ID: id, Err: err})
			}
		}
	}
}

// invalidIDBudget bounds the start-up scan of ReportInvalidIDs, so that a
// very large store delays serving by at most this much.
const invalidIDBudget = 10 * time.Second

// ReportInvalidIDs logs, at WARN, each account and feature server in the
// store whose id breaks CheckLabelID (FindInvalidIDs), with what to do
// about it, and returns how many it found. A node calls it at start-up.
// Such records keep working as far as they did, but their DNS names may
// collide with another account's; they can be read and deleted, not
// written. A scan that fails or runs past its budget is logged too.
func (s *System) ReportInvalidIDs(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, invalidIDBudget)
	defer cancel()
	bad, err := FindInvalidIDs(ctx, s.cfg.Store)
	for _, b := range bad {
		path := "/v1/accounts/" + b.ID
		if b.Kind == KindFeatureServer {
			path = "/v1/feature-servers/" + b.ID
		}
		s.log.Warn("stored id breaks the DNS label rule: its DNS names can collide with another account's; provision it again under a valid id, then DELETE "+path,
			"kind", b.Kind, "id", b.ID, "err", b.Err.Error(), "rule", IDRule)
	}
	if err != nil {
		s.log.Warn("start-up check of stored ids did not finish; the list above may be incomplete", "found", len(bad), "err", err)
	}
	return len(bad)
}
