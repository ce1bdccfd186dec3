// Command interleave times commands in rounds: each round runs every command once, in an order
// that rotates from round to round, so a change in the host's load over the run weighs on all of
// them alike. hyperfine runs one command's runs back to back, and on a busy two-core virtual
// machine the ratio of two medians then says as much about the minute each ran in as about the
// commands.
//
//	interleave -runs 40 -json out.json NAME=COMMAND... [NAME=COMMAND...]
//
// With -grouped each command runs all its rounds before the next starts, as with hyperfine.
// With -settle it pauses before each run, so that what the kernel defers from the run before (a
// network namespace is torn down by a workqueue, after its last process) is not charged to
// whichever command comes next; on this VM the pause also lets the virtual CPUs go idle, which
// slows the next run's start (crun's most: see docs/benchmarks.md).
//
// COMMAND is split on spaces (no shell). Each command runs with stdin, stdout and stderr on
// /dev/null; a command that fails stops the run. It prints each command's median and minimum,
// and writes the wall times, in milliseconds and in round order, as JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

type command struct {
	Name string
	Args []string
	Ms   []float64
}

func main() {
	runs := flag.Int("runs", 30, "rounds")
	warmup := flag.Int("warmup", 3, "untimed rounds first")
	out := flag.String("json", "", "write the times here")
	grouped := flag.Bool("grouped", false, "run each command's rounds back to back instead (as hyperfine does)")
	settle := flag.Duration("settle", 0, "pause before each run (0: none), for what the kernel defers (a network namespace's teardown) to end")
	flag.Parse()
	cmds, err := parse(flag.Args())
	if err == nil {
		if *grouped {
			for _, c := range cmds {
				if err = measure([]*command{c}, *runs, *warmup, *settle); err != nil {
					break
				}
			}
		} else {
			err = measure(cmds, *runs, *warmup, *settle)
		}
	}
	if err == nil && *out != "" {
		err = write(*out, cmds)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "interleave:", err)
		os.Exit(1)
	}
	for _, c := range cmds {
		fmt.Printf("%-40s median %7.2f ms  min %7.2f ms\n", c.Name, median(c.Ms), slices.Min(c.Ms))
	}
}

func parse(args []string) ([]*command, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no commands (NAME=COMMAND)")
	}
	var cmds []*command
	for _, a := range args {
		name, line, ok := strings.Cut(a, "=")
		if !ok || strings.TrimSpace(line) == "" {
			return nil, fmt.Errorf("%q: want NAME=COMMAND", a)
		}
		cmds = append(cmds, &command{Name: name, Args: strings.Fields(line)})
	}
	return cmds, nil
}

func measure(cmds []*command, runs, warmup int, settle time.Duration) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	for i := -warmup; i < runs; i++ {
		for j := range cmds {
			c := cmds[(max(i, 0)+j)%len(cmds)]
			time.Sleep(settle)
			d, err := timeOne(c.Args, null)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			if i >= 0 {
				c.Ms = append(c.Ms, d.Seconds()*1000)
			}
		}
	}
	return nil
}

// timeOne runs args once: the time from just before the fork to the reaping of the process.
func timeOne(args []string, null *os.File) (time.Duration, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	t0 := time.Now()
	err := cmd.Run()
	return time.Since(t0), err
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func write(path string, cmds []*command) error {
	b, err := json.MarshalIndent(cmds, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
