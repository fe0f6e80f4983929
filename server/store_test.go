package server

import (
	"testing"

	"github.com/distchat/distchat/server/chatapi"
)

func TestScanServesOriginsWithGaps(t *testing.T) {
	st, err := openStore(t.TempDir(), "a", true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	msg := func(origin string, seq uint64, t int64) chatapi.Message {
		return chatapi.Message{Room: "r", ID: origin + string(rune('0'+seq)), From: "u", Text: "x", Stamp: chatapi.Stamp{Time: t, Server: origin, Seq: seq}}
	}
	// b's seq 1 is missing: b has no contiguous head at all.
	if err := st.commit(&writeBatch{msgs: []chatapi.Message{msg("a", 1, 10), msg("b", 2, 20), msg("a", 2, 30), msg("b", 3, 40)}}); err != nil {
		t.Fatal(err)
	}
	got, more, err := st.scan("r", nil, 10)
	if err != nil || more || len(got) != 4 {
		t.Fatalf("full scan: %d messages, more=%v, err=%v; want all 4", len(got), more, err)
	}
	for i := 1; i < len(got); i++ {
		if !got[i-1].Stamp.Less(got[i].Stamp) {
			t.Fatalf("not in stamp order: %v then %v", got[i-1].Stamp, got[i].Stamp)
		}
	}
	got, _, _ = st.scan("r", map[string]uint64{"a": 2, "b": 2}, 10)
	if len(got) != 1 || got[0].Stamp.Seq != 3 || got[0].Stamp.Server != "b" {
		t.Fatalf("scan above have: %v, want b/3 only", got)
	}
	got, more, _ = st.scan("r", nil, 2)
	if len(got) != 2 || !more || got[1].Stamp.Server != "b" {
		t.Fatalf("paged scan: %v more=%v", got, more)
	}
}
