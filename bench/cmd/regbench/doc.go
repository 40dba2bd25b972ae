// Command regbench is the driver behind `make bench` (bench/run.sh): it
// measures kaopu's registrar against Kamailio 5.6 with the same sipp
// scenario, users and rate steps, then kaopu's memory with 100,000
// bindings. It prints one line per figure on stdout ("name value"); its
// progress log goes to stderr. Every process it starts is stopped by
// process group id before it returns, also on failure or interrupt.
package main
