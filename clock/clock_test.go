package clock

import (
	"slices"
	"testing"
	"time"
)

func TestFake_AfterFuncFiresInAdvanceByDeadline(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	var fired []string
	c.AfterFunc(3*time.Second, func() { fired = append(fired, "3s") })
	c.AfterFunc(time.Second, func() { fired = append(fired, "1s") })
	stopped := c.AfterFunc(2*time.Second, func() { fired = append(fired, "2s") })

	c.Advance(999 * time.Millisecond)
	if len(fired) != 0 {
		t.Fatalf("fired %v before its deadline", fired)
	}
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	c.Advance(5 * time.Second)
	if want := []string{"1s", "3s"}; !slices.Equal(fired, want) {
		t.Fatalf("fired %v, want %v (earliest first, the stopped one never)", fired, want)
	}
	if stopped.Stop() {
		t.Fatal("Stop of a stopped timer reported true")
	}
	c.Advance(time.Hour)
	if len(fired) != 2 {
		t.Fatalf("a timer fired twice: %v", fired)
	}
}

func TestFake_ResetPostponesAndRearms(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	fired := 0
	tm := c.AfterFunc(time.Second, func() { fired++ })
	c.Advance(900 * time.Millisecond)
	if !tm.Reset(time.Second) {
		t.Fatal("Reset of a pending timer reported false")
	}
	c.Advance(900 * time.Millisecond) // 1.8 s: past the first deadline, short of the new one
	if fired != 0 {
		t.Fatal("Reset did not postpone the timer")
	}
	c.Advance(100 * time.Millisecond)
	if fired != 1 {
		t.Fatalf("fired %d times at the new deadline, want 1", fired)
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a fired timer reported true")
	}
	c.Advance(time.Second)
	if fired != 2 {
		t.Fatalf("a fired timer Reset fired %d times in all, want 2", fired)
	}
}

func TestReal_AfterFuncFires(t *testing.T) {
	done := make(chan struct{})
	Real{}.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the real timer never fired")
	}
	if (Real{}).AfterFunc(time.Hour, func() {}).Stop() != true {
		t.Fatal("Stop of a pending real timer reported false")
	}
}
