#!/usr/bin/env bash
# Generates the voice prompts the server's media applications play
# (internal/ivr/prompts/LANG/NAME.wav, embedded in the binary with go:embed)
# with the free text-to-speech engine espeak-ng, converted by sox to what
# the endpoint plays: RIFF WAVE, 16-bit PCM, mono, 8000 Hz.
#
#   scripts/prompts.sh            # writes every prompt of the list below
#   scripts/prompts.sh --check    # exits 1 if a committed file differs
#
# Needs the Debian packages espeak-ng and sox (apt-get install espeak-ng sox).
# Idempotent: the same espeak-ng and sox give byte-identical files, and a
# file is rewritten only when its content changes. The tests use the
# committed files and never run this script. To add a prompt, add a line
# "name|text" below, run the script and commit the new file; a prompt's name
# is the key the Go code asks the prompt library for.
set -euo pipefail

cd "$(dirname "$0")/.."
out=internal/ivr/prompts/en
voice=${PROMPT_VOICE:-en-us}
speed=${PROMPT_SPEED:-150}
check=false
[[ ${1:-} == --check ]] && check=true

for tool in espeak-ng sox; do
	if ! command -v "$tool" >/dev/null; then
		echo "prompts.sh: $tool is missing (apt-get install espeak-ng sox)" >&2
		exit 2
	fi
done

prompts=(
	"welcome|Welcome to the calling card service."
	"enter_card|Please enter your card number, followed by the hash key."
	"enter_pin|Please enter your PIN, followed by the hash key."
	"invalid|The card number or PIN is not valid."
	"too_many|Too many failed attempts."
	"expired|This card has expired."
	"unusable|This card cannot be used."
	"empty|This card has no credit left."
	"balance|Your balance is"
	"enter_destination|Please enter the number you wish to call, followed by the hash key."
	"no_rate|Calls to this number are not possible with this card."
	"minutes_to|At this rate you can talk for"
	"connecting|Connecting your call."
	"unreachable|The number you dialed cannot be reached."
	"busy|The number you dialed is busy."
	"goodbye|Goodbye."
	"minute|minute"
	"minutes|minutes"
	"and|and"
	"cents|cents"
	"cent|cent"
	"euros|euros"
	"dollars|dollars"
	"pounds|pounds"
	"units|units"
	"hundred|hundred"
	"thousand|thousand"
	"million|million"
	"0|zero" "1|one" "2|two" "3|three" "4|four" "5|five" "6|six" "7|seven" "8|eight" "9|nine"
	"10|ten" "11|eleven" "12|twelve" "13|thirteen" "14|fourteen" "15|fifteen" "16|sixteen"
	"17|seventeen" "18|eighteen" "19|nineteen"
	"20|twenty" "30|thirty" "40|forty" "50|fifty" "60|sixty" "70|seventy" "80|eighty" "90|ninety"
	"star|star"
	"hash|hash"
	"vm_person_at|The person at extension"
	"vm_unavailable|is not available. Please leave a message after the tone."
	"vm_person_unavailable|The person you are calling is not available. Please leave a message after the tone."
	"vm_recorded|Your message has been recorded. Goodbye."
	"vm_you_have|You have"
	"vm_new_message|new message"
	"vm_new_messages|new messages"
	"vm_old_message|old message"
	"vm_old_messages|old messages"
	"vm_no_messages|You have no messages."
	"vm_message_from|Message from"
	"vm_unknown_caller|an unknown caller"
	"vm_received_at|received at"
	"vm_menu|Press 1 to replay, 6 for the next message, 4 for the previous one, 7 to delete, 9 to save, or hash to exit."
	"vm_deleted|Message deleted."
	"vm_saved|Message saved."
	"vm_no_more|No more messages."
	"vm_enter_mailbox|Please enter your mailbox number, followed by the hash key."
	"vm_login_incorrect|Login incorrect."
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
changed=0
for p in "${prompts[@]}"; do
	name=${p%%|*}
	text=${p#*|}
	espeak-ng -v "$voice" -s "$speed" -w "$tmp/raw.wav" "$text"
	# Resample to 8 kHz mono 16-bit; trim leading and trailing silence so
	# concatenated words ("twelve" "euros") run together; -3 dB headroom;
	# -D: no dither, so the output is the same on every run.
	sox -D "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer -t wav "$tmp/$name.wav" \
		silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -3
	if ! cmp -s "$tmp/$name.wav" "$out/$name.wav"; then
		changed=$((changed + 1))
		if $check; then
			echo "prompts.sh: $out/$name.wav differs from what the script makes" >&2
		else
			cp "$tmp/$name.wav" "$out/$name.wav"
		fi
	fi
done
if $check && ((changed > 0)); then
	exit 1
fi
echo "prompts.sh: ${#prompts[@]} prompts in $out, $changed rewritten"
