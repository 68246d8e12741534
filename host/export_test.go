package host

import "time"

// SetClock replaces the clock of s's rate limiter (tests only).
func SetClock(s *Server, now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// RateEntries returns how many tokens s's rate limiter keeps starts for
// (tests only).
func RateEntries(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rate.size()
}

// SetRecordIntervals shortens how often s logs failed record writes and
// retries them (tests only; call before the first session).
func SetRecordIntervals(s *Server, logEvery, retryEvery time.Duration) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.rec.logEvery, s.rec.retryEvery = logEvery, retryEvery
}
