package cdr

// Pending reports how many events wait for the writer; for tests only.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}
