package host

import "time"

// SetClock replaces the clock of s's rate limiter and of its hello failure
// counts (tests only).
func SetClock(s *Server, now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// RateEntries returns how many tokens s's rate limiter keeps starts for
// (tests only; s has the in-memory Limiter).
func RateEntries(s *Server) int {
	l := s.limiter.(*memLimiter)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate.size()
}

// SetRecordIntervals shortens how often s logs failed record writes and
// retries them (tests only; call before the first session).
func SetRecordIntervals(s *Server, logEvery, retryEvery time.Duration) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.rec.logEvery, s.rec.retryEvery = logEvery, retryEvery
}
