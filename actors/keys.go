package actors

// Store keys. Ids never contain "/", so a prefix ending in "/" selects
// exactly one account's or one group's keys.

func accountKey(a string) string             { return "acct/" + a }
func accountChildren(a string) string        { return "acct/" + a + "/" }
func groupPrefix(a string) string            { return "acct/" + a + "/grp/" }
func groupKey(a, g string) string            { return groupPrefix(a) + g }
func devicePrefix(a string) string           { return "acct/" + a + "/dev/" }
func deviceKey(a, d string) string           { return devicePrefix(a) + d }
func deviceGroupPrefix(a string) string      { return "dgrp/" + a + "/" }
func deviceGroupKey(a, g string) string      { return deviceGroupPrefix(a) + g }
func deviceGroupIdentity(a, g string) string { return a + "/" + g }
