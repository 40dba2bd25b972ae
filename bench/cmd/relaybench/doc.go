// Command relaybench is the media-relay part of `make bench` (bench/run.sh
// runs it after the registrar and call benches, or alone with
// --relay-only): an RTP load generator sends G.711 (160-byte payloads,
// 20 ms apart, both directions) through N anchored calls, first with no
// relay between the two ends (the baseline), then through kaopu (calls
// set up over SIP with the real binary) and through rtpengine (userspace,
// set up over its ng control protocol), stepping N up. For each it finds
// the highest N with < 0.1 % loss and a receive-jitter p99 within 2 ms of
// the baseline's, and the relay's CPU per forwarded packet; for kaopu also
// the memory per active call. The kaopu-srtp target (-targets
// baseline,kaopu,kaopu-srtp) is kaopu with both phones on SRTP (SDES,
// AES_CM_128_HMAC_SHA1_80, a key of their own each), so the relay
// decrypts and re-encrypts every packet; relay.ratio_cpu_srtp_plain_at_N
// compares its CPU per packet with plain kaopu's. It prints one "name value" line per figure
// on stdout and appends them to bench/out/results.txt; its progress log
// goes to stderr. Every process it starts is stopped by process group id
// before it returns, also on failure or interrupt. See bench/README.md.
package main
