// Package trunk connects the server to carriers (SIP trunks): it keeps
// the trunks, outbound routes and DIDs of the store in memory (reloaded
// when they change, in any process), registers with carriers that want
// it, checks each trunk with OPTIONS, and answers the call layer's two
// questions: through which trunks does a dialed number go out, and is an
// arriving INVITE a carrier's call to one of our numbers.
//
// Numbers go to carriers in E.164 (dialplan.Numbering); each trunk writes
// them its own way (store.Trunk.NumberFormat).
package trunk
