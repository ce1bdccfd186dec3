// Package seccomp turns seccomp profiles into classic BPF filters and installs them.
//
// It owns Docker's default profile (Default), reading profiles in Docker's JSON format
// (ParseDocker), compiling a runtime-spec profile into a program for the machine kiln runs on
// (Compile) and loading it (Load). It never chooses which profile a container gets, and runs no
// seccomp agent: SCMP_ACT_NOTIFY is refused.
//
// In a re-exec'd container init, last thing before execve:
//
//	prog, err := seccomp.Compile(seccomp.Default(bounding)) // ~0.1 ms; do it early
//	...
//	runtime.LockOSThread() // no_new_privs is per thread until Load spreads it
//	unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
//	if err := seccomp.Load(prog); err != nil { ... }
//	unix.Exec(path, argv, env)
//
// kiln is built without cgo, so this is not libseccomp: the syscall numbers come from
// golang.org/x/sys (ztables.go, made by mktables.go) and the program from asm_linux.go.
// docs/security.md says how filters are laid out and where they differ from Docker's.
package seccomp
