package client

import "time"

// SetICEFailedTimeout replaces pion's ICE failed timeout for the tests
// (0: pion's).
func SetICEFailedTimeout(d time.Duration) { iceFailedTimeout = d }
