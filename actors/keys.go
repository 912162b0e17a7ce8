package actors

import (
	"cmp"
	"fmt"
	"net/url"
	"time"
)

// Store keys. Ids never contain "/", so a prefix ending in "/" selects
// exactly one account's or one group's keys. Everything under
// accountChildren belongs to the account and goes with it.

func accountKey(a string) string             { return "acct/" + a }
func accountChildren(a string) string        { return "acct/" + a + "/" }
func groupPrefix(a string) string            { return "acct/" + a + "/grp/" }
func groupKey(a, g string) string            { return groupPrefix(a) + g }
func devicePrefix(a string) string           { return "acct/" + a + "/dev/" }
func deviceKey(a, d string) string           { return devicePrefix(a) + d }
func trunkPrefix(a string) string            { return "acct/" + a + "/trunk/" }
func trunkKey(a, t string) string            { return trunkPrefix(a) + t }
func routesKey(a string) string              { return "acct/" + a + "/routes" }
func deviceGroupPrefix(a string) string      { return "dgrp/" + a + "/" }
func deviceGroupKey(a, g string) string      { return deviceGroupPrefix(a) + g }
func deviceGroupIdentity(a, g string) string { return a + "/" + g }
func featureKey(f string) string             { return "feat/" + f }

// A group's bindings: one record per device below the group's state record
// (deviceGroupKey), under deviceGroupPrefix so that they go with the
// account, and one device's only written by its REGISTER.
func deviceBindingsPrefix(a, g string) string { return deviceGroupKey(a, g) + "/b/" }
func deviceBindingsKey(a, g, d string) string { return deviceBindingsPrefix(a, g) + d }

// The messaging supervisor's keys (messaging.go), under the account so
// that they go with it. Destinations and message ids are escaped
// (url.PathEscape), since they may hold "/".
func fraudPrefix(a string) string             { return "acct/" + a + "/fraud/" }
func fraudPolicyKey(a, level string) string   { return fraudPrefix(a) + "policy/" + level }
func fraudHistoryKey(a, sender string) string { return fraudPrefix(a) + "hist/" + sender }
func fraudIncidentPrefix(a string) string     { return fraudPrefix(a) + "inc/" }
func fraudIncidentKey(a, id string) string    { return fraudIncidentPrefix(a) + id }
func fraudOpenPrefix(a string) string         { return fraudPrefix(a) + "open/" }
func fraudOpenKey(a, id string) string        { return fraudOpenPrefix(a) + id }
func fraudBlockPrefix(a string) string        { return fraudPrefix(a) + "block/" }
func fraudAuditPrefix(a string) string        { return fraudPrefix(a) + "audit/" }
func messageQueuePrefix(a string) string      { return "acct/" + a + "/msgq/" }
func messageRecordKey(a, id string) string    { return "acct/" + a + "/msgrec/" + url.PathEscape(id) }
func fraudBlockKey(a, device, dest string) string {
	return fraudBlockPrefix(a) + url.PathEscape(cmp.Or(device, "*")) + "/" + url.PathEscape(dest)
}
func messageQueueKey(a, device string, at time.Time, id string) string {
	return messageQueuePrefix(a) + device + "/" + fmt.Sprintf("%019d", at.UnixNano()) + "-" + url.PathEscape(id)
}
