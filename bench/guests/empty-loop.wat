;; Baseline for clock-loop.wat: the same start-up (argv parsing) and the same
;; loop of N iterations, N = argv[1], without the host call. It imports
;; clock_time_get too, so both guests link the same host functions.
;; Exit codes: 0 done, 1 bad or missing N.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; Layout: 0 argc, 4 argv bytes, 16 loop sink, 64.. argv pointers, 4096.. argv strings.
  (memory (export "memory") 1)

  ;; argv[1] as an unsigned decimal number; exits 1 when missing or malformed.
  (func $count (result i32)
    (local $p i32) (local $c i32) (local $n i32)
    (if (call $args_sizes_get (i32.const 0) (i32.const 4)) (then (call $proc_exit (i32.const 1))))
    (if (i32.lt_u (i32.load (i32.const 0)) (i32.const 2)) (then (call $proc_exit (i32.const 1))))
    (if (i32.gt_u (i32.load (i32.const 0)) (i32.const 1000)) (then (call $proc_exit (i32.const 1))))
    (if (i32.gt_u (i32.load (i32.const 4)) (i32.const 60000)) (then (call $proc_exit (i32.const 1))))
    (if (call $args_get (i32.const 64) (i32.const 4096)) (then (call $proc_exit (i32.const 1))))
    (local.set $p (i32.load (i32.const 68)))
    (if (i32.eqz (i32.load8_u (local.get $p))) (then (call $proc_exit (i32.const 1))))
    (block $end
      (loop $digit
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $end (i32.eqz (local.get $c)))
        (if (i32.gt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 9))
          (then (call $proc_exit (i32.const 1))))
        (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (i32.sub (local.get $c) (i32.const 48))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $digit)))
    (local.get $n))

  ;; The store keeps the loop body from being empty, as the call's result check is in clock-loop.
  (func $_start (export "_start")
    (local $n i32) (local $i i32)
    (local.set $n (call $count))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.const 16) (local.get $i))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))))
