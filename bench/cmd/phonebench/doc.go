// Command phonebench is the `kaopu phone` part of `make bench`
// (bench/run.sh): it measures issue 4's two targets with the real binary.
// Two `kaopu phone` processes call each other directly by IP on 127.0.0.1,
// each sending a WAV file of short chirps at known offsets and recording
// what it hears; the mouth-to-ear delay the phones add is where each chirp
// lands in the other side's recording, both files being timed by the
// "media started at" line each phone prints (ua.Stats.MediaStart). The CPU
// of each phone process is utime+stime from /proc/PID/stat over a steady
// window of the call.
//
// It prints one line per figure on stdout ("name value") and appends them
// to OUT/results.txt; its progress log goes to stderr. Every process it
// starts is stopped by its process id before it returns.
package main
