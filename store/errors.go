package store

import "errors"

// Sentinel errors of the SQLite adapter alone; those of the contracts
// (ErrNotFound, ErrInvalid, ...) are domain's. Functions wrap them with %w;
// test with errors.Is.
var (
	// ErrSchemaTooNew: the database was written by a newer geckohost.
	ErrSchemaTooNew = errors.New("database schema is newer than this geckohost")
)
