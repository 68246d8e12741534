package domain

import (
	"testing"
	"time"
)

func TestRoundUpWait(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		time.Nanosecond:                   time.Millisecond,
		999*time.Millisecond + 1:          time.Second,
		time.Second:                       time.Second,
		12*time.Second + time.Millisecond: 13 * time.Second,
		time.Minute:                       time.Minute,
	} {
		if got := roundUpWait(in); got != want {
			t.Errorf("roundUpWait(%v) = %v, want %v", in, got, want)
		}
	}
}
