package fraud

func ptr[T any](v T) *T { return &v }

// DefaultPolicy is the policy under every account's own: every field set.
// The thresholds were tuned on the fraud simulation (make sim
// SCENARIO=fraud; simulations/fraud.go) to contain each modelled attack
// within 20 messages while blocking at most 0.1% of legitimate messages.
func DefaultPolicy() Policy {
	return Policy{
		// Act on verdicts: monitor mode is for trying a policy out.
		Monitor: ptr(false),
		// Schedules are written in UTC unless an account says otherwise.
		UTCOffsetMinutes: ptr(0),
		// Nothing is safe by default.
		SafeList: []string{},
		Destinations: Destinations{
			// Premium-rate ranges that SMS pumping and toll fraud favour:
			// US/CA 900 and 976, UK 09 and 087, DE 0900 and 0137, FR 08 9,
			// IT 899, ES 803/806/807, AU 190.
			PremiumPrefixes: []string{"+1900*", "+1976*", "+449*", "+4487*", "+49900*", "+49137*",
				"+3389*", "+39899*", "+34803*", "+34806*", "+34807*", "+61190*"},
			// High-cost destinations of international revenue-share fraud:
			// satellite and international networks, and ranges often
			// pumped (Cuba, Somalia, Sierra Leone, Guinea, Latvia's 81,
			// Maldives, Papua New Guinea, Sao Tome).
			HighCostPrefixes: []string{"+870*", "+881*", "+882*", "+883*", "+53*", "+252*", "+232*",
				"+224*", "+37181*", "+960*", "+675*", "+239*"},
			// No country is blocked or monitored until an account says so.
			Countries:      map[string]string{},
			DefaultCountry: ptr(CountryAllow),
			// A premium message counts 1 towards destination_risk, a
			// high-cost one 1/2 and one to a monitored country 1/4.
			PremiumWeight:  ptr(1.0),
			HighCostWeight: ptr(0.5),
			MonitorWeight:  ptr(0.25),
		},
		Indicators: Indicators{
			// A person types at most a few messages a minute; 18 weighted
			// messages (72 to known contacts) in a minute is a machine.
			RatePerMinute: Indicator{Enabled: ptr(true), Warning: ptr(10.0), Critical: ptr(18.0)},
			// 8 new destinations within one second is a flood.
			BurstPerSecond: Indicator{Enabled: ptr(true), Warning: ptr(4.0), Critical: ptr(8.0)},
			// 15 destinations the device never wrote to, within an hour.
			DistinctDestinations: Indicator{Enabled: ptr(true), Warning: ptr(8.0), Critical: ptr(15.0),
				WindowSeconds: ptr(3600.0)},
			// Two premium messages (or four high-cost) in 10 minutes.
			DestinationRisk: Indicator{Enabled: ptr(true), Warning: ptr(1.0), Critical: ptr(2.0),
				WindowSeconds: ptr(600.0)},
			// Five new numbers in a row, each within SequentialGap of one
			// before, in 10 minutes: enumeration.
			SequentialDestinations: Indicator{Enabled: ptr(true), Warning: ptr(3.0), Critical: ptr(5.0),
				WindowSeconds: ptr(600.0)},
			// One text to 10 new destinations in 10 minutes; a broadcast to
			// known contacts counts a tenth per destination.
			SameBody: Indicator{Enabled: ptr(true), Warning: ptr(5.0), Critical: ptr(10.0),
				WindowSeconds: ptr(600.0), KnownWeight: ptr(0.1)},
			// Twice the expected hourly count (never under the floor).
			HistoryDeviation: Indicator{Enabled: ptr(true), Warning: ptr(1.0), Critical: ptr(2.0)},
			// Three messages to new destinations, within an hour, from a
			// network and user agent the device never used.
			NewSource: Indicator{Enabled: ptr(true), Warning: ptr(1.0), Critical: ptr(3.0),
				WindowSeconds: ptr(3600.0)},
			// 60% of at least 10 deliveries in 10 minutes failed.
			FailureRatio: Indicator{Enabled: ptr(true), Warning: ptr(0.3), Critical: ptr(0.6),
				WindowSeconds: ptr(600.0), MinCount: ptr(10.0)},
		},
		History: HistoryOptions{
			// Four weeks of hourly aggregates: four samples of each hour of
			// the week.
			RetentionDays: ptr(28),
			// A device is expected to send up to 20 messages in any hour
			// before its own history says more; a group 200, an account
			// 1,000.
			FloorPerHour:        ptr(20.0),
			GroupFloorPerHour:   ptr(200.0),
			AccountFloorPerHour: ptr(1000.0),
			// Expected: mean plus three standard deviations.
			Sigmas: ptr(3.0),
			// A sender may reach twice its own retained peak.
			Headroom: ptr(2.0),
			// A message to a known contact counts a quarter.
			KnownDestinationWeight: ptr(0.25),
			// A new network with a known user agent (travel), or a new
			// user agent on a known network (an app update), counts a
			// quarter towards new_source.
			NewSourcePartialWeight: ptr(0.25),
			// Numbers within 10 of each other continue a chain.
			SequentialGap: ptr(10),
		},
		Actions: Actions{
			// All four actions, as the abstract describes them.
			TerminateInFlight: ptr(true),
			ResetCredentials:  ptr(true),
			BlockDestinations: ptr(true),
			Restore:           ptr(true),
			// Blocks lift after an hour (Twilio's range is 5 min to 12 h).
			BlockExpirySeconds: ptr(3600),
			// The destinations of the last 10 minutes are blocked.
			IncidentWindowSeconds: ptr(600),
		},
	}
}
