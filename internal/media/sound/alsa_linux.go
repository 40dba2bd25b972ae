//go:build soundcard

package sound

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>

// ALSA prints every failed look-up (dozens of lines on a machine without a
// card) to stderr before miniaudio gives up on it; Open reports the outcome
// itself. snd_lib_error_set_handler (alsa-lib's error.c) replaces that
// printer for the process: set it on the libasound miniaudio will load, if
// there is one. The handle stays open so that the handler stays set.
static void kaopu_alsa_silent(const char *file, int line, const char *function, int err, const char *fmt, ...) {}

static void kaopu_alsa_quiet(void) {
	void *h = dlopen("libasound.so.2", RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		return;
	}
	int (*set)(void *) = (int (*)(void *))dlsym(h, "snd_lib_error_set_handler");
	if (set != NULL) {
		set((void *)kaopu_alsa_silent);
	}
}
*/
import "C"

import "sync"

// quietOnce guards process-wide C state (alsa-lib's error handler), not
// kaopu's: one per process, as that handler is.
var quietOnce sync.Once

// quietALSA silences alsa-lib's own error printing, once per process.
func quietALSA() { quietOnce.Do(func() { C.kaopu_alsa_quiet() }) }
