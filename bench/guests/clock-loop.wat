;; Host-call overhead guest: calls clock_time_get(MONOTONIC) N times in a
;; loop, N = argv[1] in decimal. empty-loop.wat is the same program without
;; the call; (time(clock-loop N) - time(empty-loop N)) / N is the cost of one
;; host call, with start-up and loop overhead cancelled out.
;; Exit codes: 0 done, 1 bad or missing N, 2 clock_time_get returned an errno.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; Layout: 0 argc, 4 argv bytes, 16 timestamp out, 64.. argv pointers, 4096.. argv strings.
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

  (func $_start (export "_start")
    (local $n i32) (local $i i32)
    (local.set $n (call $count))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 16))
          (then (call $proc_exit (i32.const 2))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))))
