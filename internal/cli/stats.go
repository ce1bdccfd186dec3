package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/runtime"
)

// statsInterval is how often `kiln stats` samples, and the span CPU % is measured over.
const statsInterval = time.Second

func newStats(e *env) *cobra.Command {
	var noStream bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [--no-stream] [--format table|json] [CONTAINER...]",
		Short: "Show running containers' CPU, memory, network, block I/O and process counts",
		Long: `Show the resource use of the named containers (all running ones by default), refreshed every
second until interrupted, or once with --no-stream. CPU % is over the last second, 100% being one
CPU. Memory is what the container uses without inactive page cache, against its --memory limit or
the host's memory. NET I/O counts the container's own interfaces (not loopback; nothing with
--network host). --format json prints one object per container per sample, one per line.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: want table or json", format)
			}
			return streamStats(cmd.Context(), e, args, noStream, format)
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// statsRow is one container's line: JSON for --format json.
type statsRow struct {
	ID         string  `json:"ID"`
	Name       string  `json:"Name"`
	CPUPerc    float64 `json:"CPUPerc"` // percent of one CPU
	MemUsage   uint64  `json:"MemUsage"`
	MemLimit   uint64  `json:"MemLimit"`
	MemPerc    float64 `json:"MemPerc"`
	NetRx      uint64  `json:"NetRx"`
	NetTx      uint64  `json:"NetTx"`
	BlockRead  uint64  `json:"BlockRead"`
	BlockWrite uint64  `json:"BlockWrite"`
	Pids       uint64  `json:"Pids"`
}

type sample struct {
	at    time.Time
	stats runtime.Stats
}

func streamStats(ctx context.Context, e *env, refs []string, once bool, format string) error {
	prev := map[string]sample{}
	clear := format == "table" && !once && isTerminal(e.stdout)
	for first := true; ; first = false {
		states, err := statsTargets(e, refs, first)
		if err != nil {
			return err
		}
		rows := statsRows(states, prev)
		if !first || len(states) == 0 {
			if err := printStats(e.stdout, rows, format, clear); err != nil {
				return err
			}
			if once {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(statsInterval):
		}
	}
}

// statsTargets are the running containers refs name (all running ones without refs). A named
// container that is not running is an error on the first round; later it just drops out.
func statsTargets(e *env, refs []string, strict bool) ([]*container.State, error) {
	if len(refs) == 0 {
		cs, err := container.Open(e.root)
		if err != nil {
			return nil, err
		}
		all, err := cs.List()
		if err != nil {
			return nil, err
		}
		var running []*container.State
		for _, s := range all {
			if s.Status == container.StatusRunning {
				running = append(running, s)
			}
		}
		return running, nil
	}
	var states []*container.State
	for _, ref := range refs {
		c, err := getContainer(e, ref)
		if err != nil {
			return nil, err
		}
		s, err := c.State()
		if err != nil {
			return nil, err
		}
		if s.Status != container.StatusRunning {
			if strict {
				return nil, fmt.Errorf("container %s is not running", ref)
			}
			continue
		}
		states = append(states, s)
	}
	return states, nil
}

// statsRows samples each container; CPU % comes from its previous sample in prev, which is
// replaced. A container that ends meanwhile is left out.
func statsRows(states []*container.State, prev map[string]sample) []statsRow {
	var rows []statsRow
	for _, s := range states {
		if !container.Alive(s.Pid, s.PidStart) {
			continue
		}
		st, err := runtime.ReadStats(s.ID, s.Pid)
		if err != nil {
			continue
		}
		now := sample{at: time.Now(), stats: st}
		row := statsRow{ID: s.ID[:12], Name: s.Name, MemUsage: st.Memory, MemLimit: st.MemoryLimit,
			NetRx: st.NetRx, NetTx: st.NetTx, BlockRead: st.BlockRead, BlockWrite: st.BlockWrite, Pids: st.Pids}
		if p, ok := prev[s.ID]; ok && now.at.After(p.at) && st.CPU >= p.stats.CPU {
			row.CPUPerc = float64(st.CPU-p.stats.CPU) / float64(now.at.Sub(p.at).Nanoseconds()) * 100
		}
		if st.MemoryLimit > 0 {
			row.MemPerc = float64(st.Memory) / float64(st.MemoryLimit) * 100
		}
		prev[s.ID] = now
		rows = append(rows, row)
	}
	return rows
}

func printStats(w io.Writer, rows []statsRow, format string, clear bool) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if clear {
		fmt.Fprint(w, "\033[2J\033[H")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%s / %s\t%s / %s\t%d\n", r.ID, r.Name, r.CPUPerc,
			size(int64(r.MemUsage)), size(int64(r.MemLimit)), r.MemPerc,
			decimalSize(r.NetRx), decimalSize(r.NetTx), decimalSize(r.BlockRead), decimalSize(r.BlockWrite), r.Pids)
	}
	return tw.Flush()
}

// decimalSize prints a byte count in powers of 1000, as Docker prints I/O: "648 B", "1.2 kB".
func decimalSize(n uint64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	f, exp := float64(n), 0
	for f >= 1000 && exp < 5 {
		f /= 1000
		exp++
	}
	return fmt.Sprintf("%.3g %cB", f, " kMGTP"[exp])
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
