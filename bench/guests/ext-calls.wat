;; Extension call round trips from an executor (bench/extensions.bench.ts),
;; each looped n times inside the guest, beside WASI clock_time_get:
;;   loop_noop     bench:noop.noop        handled in the executor, no provider
;;   loop_ping     bench:noop.ping        a provider round trip to the pool's thread (no-op provider)
;;   loop_kv_get   uniwasm:kv.get         a warm key through the KV provider (SQLite)
;;   loop_service  uniwasm:service.call   a call to a warm reactor app, then response_close
;;   loop_clock    clock_time_get         WASI, for scale
(module
  (import "bench:noop" "noop" (func $noop (result i32)))
  (import "bench:noop" "ping" (func $ping (result i32)))
  (import "uniwasm:kv" "get" (func $kv_get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "uniwasm:service" "call" (func $call (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "uniwasm:service" "response_close" (func $close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "warm")   ;; the KV key
  (data (i32.const 16) "echo")  ;; the callee app
  (data (i32.const 32) "ping")  ;; the callee's input
  ;; 64: kv value buffer (64 bytes); 128: len_out / status_out; 136: response_out / time_out
  (func (export "loop_noop") (param $n i32) (result i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (drop (call $noop))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (i32.const 0))
  (func (export "loop_ping") (param $n i32) (result i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (drop (call $ping))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (i32.const 0))
  (func (export "loop_kv_get") (param $n i32) (result i32)
    (local $e i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $e (call $kv_get (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 64) (i32.const 64) (i32.const 128)))
      (if (local.get $e) (then (return (local.get $e))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (i32.const 0))
  (func (export "loop_service") (param $n i32) (result i32)
    (local $e i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $e (call $call (i32.const 16) (i32.const 4) (i32.const 32) (i32.const 4) (i32.const 128) (i32.const 136)))
      (if (local.get $e) (then (return (local.get $e))))
      (drop (call $close (i32.load (i32.const 136))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (i32.const 0))
  (func (export "loop_clock") (param $n i32) (result i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 136)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (i32.const 0)))
