// Package callingcard is the prepaid calling-card service: an application
// on a media endpoint (internal/ivr) for calls that reach the service's
// access number. The SIP side (internal/call) answers the call and hands
// the application its endpoint; the application prompts for the card
// number and PIN (RFC 4733 digits, # ends each), checks the card (expiry,
// state, balance), says the balance, collects the destination, says how
// many minutes the balance buys there, hands the call to the call layer
// through Bridger (which places the outbound leg through a trunk route
// and cuts it when the money runs out), and charges the card for the talk
// time at the end.
//
// A card is a prepaid billing account of its own (store.CardAccount:
// balance, currency, rate deck, ledger) with a number and a PIN hash
// (pin.go). AccountBilling reserves each call with internal/billing on
// that account, so the minutes said are what the balance, less the
// card's other live calls, buys at the deck's rate to the destination,
// and the talk is debited from the card's ledger at the end. The service
// also keeps one call per card at a time.
//
// Everything the service touches is an interface declared here: Cards
// (number and PIN check), Biller and Reservation (rate, longest call,
// debit) and Bridger (the outbound call), so the flow is tested with
// fakes and wired to the store, billing and the trunks in the composition
// root (internal/server).
//
// Security: a wrong number or PIN gets the same prompt and takes the same
// time as a wrong PIN for a real card (Cards implementations must keep
// it so); each failure is reported through OnFailure, which the server
// counts toward the source address's ban, and the third failure of a call
// hangs up.
package callingcard
