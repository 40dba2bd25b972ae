package cdr

import "errors"

// ErrBacklog is logged for an event dropped because too many events were
// already waiting for the store (it has been stuck for a while).
var ErrBacklog = errors.New("cdr: too many records waiting for the store")
