package trace

import "sort"

// leg is one message crossing the network: a request (send to recv) or a
// reply (reply to return). from is the sending event; to is the receiving
// event, or -1 when the trace has none: then drop is the drop event when
// the network lost it, or -1 when it was not received for another reason
// (the receiver was down, the caller had given up or crashed, or the run
// ended first).
type leg struct {
	from, to, drop int
	reply          bool
}

// messageLegs pairs each message's sending and receiving events, in the
// order the messages were sent. A request matches its recv (two, when the
// network duplicated it) by Call; a reply its return. When a duplicated
// request produced two replies, the return is matched to the reply whose
// callee clock entry it carries (the simulator merged that one), else to
// the earlier reply.
func messageLegs(events []Event) []leg {
	var legs []leg
	send := map[uint64]int{}      // call -> send event
	sendLeg := map[uint64]bool{}  // call -> a leg was made for its request
	replies := map[uint64][]int{} // call -> reply events not yet matched
	replyLeg := map[int]bool{}    // reply event -> has a leg
	for i := range events {
		e := &events[i]
		switch e.Kind {
		case "send":
			send[e.Call] = i
		case "recv":
			if s, ok := send[e.Call]; ok {
				legs = append(legs, leg{from: s, to: i, drop: -1})
				sendLeg[e.Call] = true
			}
		case "reply":
			replies[e.Call] = append(replies[e.Call], i)
		case "return":
			rs := replies[e.Call]
			if len(rs) == 0 {
				continue
			}
			k := 0
			for j, r := range rs {
				callee := events[r].Node
				if events[r].VC != nil && e.VC != nil && events[r].VC[callee] == e.VC[callee] {
					k = j
					break
				}
			}
			legs = append(legs, leg{from: rs[k], to: i, drop: -1, reply: true})
			replyLeg[rs[k]] = true
			replies[e.Call] = append(rs[:k:k], rs[k+1:]...)
		case "drop":
			s, ok := send[e.Call]
			if !ok {
				continue
			}
			if events[s].Node == e.Node {
				legs = append(legs, leg{from: s, to: -1, drop: i})
				sendLeg[e.Call] = true
				continue
			}
			// A lost reply: the latest unmatched reply of the call.
			rs := replies[e.Call]
			for j := len(rs) - 1; j >= 0; j-- {
				if events[rs[j]].Node == e.Node {
					legs = append(legs, leg{from: rs[j], to: -1, drop: i, reply: true})
					replyLeg[rs[j]] = true
					replies[e.Call] = append(rs[:j:j], rs[j+1:]...)
					break
				}
			}
		}
	}
	// Messages sent but never received, for no recorded network reason.
	for i := range events {
		e := &events[i]
		switch {
		case e.Kind == "send" && !sendLeg[e.Call]:
			legs = append(legs, leg{from: i, to: -1, drop: -1})
		case e.Kind == "reply" && !replyLeg[i]:
			legs = append(legs, leg{from: i, to: -1, drop: -1, reply: true})
		}
	}
	sort.SliceStable(legs, func(a, b int) bool { return legs[a].from < legs[b].from })
	return legs
}
