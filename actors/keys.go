package actors

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
