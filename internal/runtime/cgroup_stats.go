package runtime

// Stats is a container's resource use at one moment. Counters (CPU, network, block I/O) grow
// from the container's start; compare two samples for rates.
type Stats struct {
	CPU         uint64 // CPU time used, nanoseconds
	Memory      uint64 // bytes in use, without inactive page cache (as Docker counts it)
	MemoryLimit uint64 // the container's memory limit, or the host's memory without one
	Pids        uint64 // processes and threads
	NetRx       uint64 // bytes received on the container's interfaces (not loopback)
	NetTx       uint64
	BlockRead   uint64 // bytes read from and written to block devices
	BlockWrite  uint64
}
