;; The plugin seed of issue 10, unchanged in shape: it imports its memory and one
;; host function, exports one function, and may touch nothing else.
;; process(ptr, len): logs "processing", upper-cases the ASCII letters of the
;; input in place, logs the result, and returns the input's length.
(module
  (import "env" "memory" (memory 1))
  (import "env" "log" (func $log (param i32 i32)))
  (data (i32.const 0) "processing")
  (func $process (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $c i32)
    (call $log (i32.const 0) (i32.const 10))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
          (then (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $log (local.get $ptr) (local.get $len))
    (local.get $len))
  (export "process" (func $process)))
