// Package netns runs a test binary inside a private network namespace that
// holds only the loopback interface, so that no packet a test sends (WebRTC
// included) can leave the machine.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(netns.Run(m)) }
//
// Run re-executes the test binary as
//
//	unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh <binary> <args...>
//
// with GECKOHOST_NETNS=1 in its environment and returns the child's exit
// code. Inside the namespace (GECKOHOST_NETNS=1 set) it just runs the tests.
// When the process is not root, or unshare or ip is missing, it prints why on
// stderr and runs the tests in place; tests that need the namespace call
// [Skip] (or check [Inside]) and are skipped with that reason.
//
// For tests of real networks, [NewTopology] builds named namespaces
// joined by veth pairs, with addresses, routes, forwarding and nftables
// rules, runs processes inside them ([Namespace.Command], and
// [Namespace.Reexec] for the test binary itself), and removes it all at
// cleanup.
package netns
