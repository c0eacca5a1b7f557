;; Transposed im2col in WebAssembly SIMD, on the tfjs wasm heap: writes the patch matrix of a
;; convolution's input with one ROW per (tap, in-channel) and one column per output position, so that
;; the filter gradient is one plain matrix product  dW [taps*in, out] = colsT [taps*in, M] x dy [M, out]
;; whose packed operand is dy (small), not the patch matrix (which XNNPACK would repack on every call).
;; Loaded by ../simd-im2col-t.ts; assembled by scripts/assemble-wat.mjs (wabt) at build time.
;;
;; Memory layout (byte addresses into the imported heap, env.memory):
;;   x      the input [n, h, w, in] float32 (NHWC); a pixel is $pixelBytes = 4*in bytes (a multiple of 16).
;;   base   i32[M]: for output position m = (b, p, q), the byte offset in x of its window's first
;;          pixel, ((b*h + p*sh)*w + q*sw) * pixelBytes. M is a multiple of 4.
;;   taps   i32[T]: for tap t = (y, x) of the window, its byte offset from the window's first pixel,
;;          (y*w + x) * pixelBytes. Every window lies inside x (no padding), so every read is in x.
;;   out    colsT [T*in, M] float32: out[(t*in + c), m] = x at base[m] + taps[t], channel c.
;;
;; Four positions x four channels at a time: four loads (one per position, channels c..c+3), a 4x4
;; transpose by shuffles, four stores (one per channel row, positions m..m+3).
(module
  (import "env" "memory" (memory 1))

  (func (export "im2colT")
    (param $x i32) (param $base i32) (param $taps i32) (param $out i32)
    (param $m i32)            ;; output positions M, a multiple of 4
    (param $t i32)            ;; taps T
    (param $pixelBytes i32)   ;; 4 * in, a multiple of 16
    (local $ti i32)           ;; current tap
    (local $tapOff i32)       ;; its byte offset within a window
    (local $mi i32)           ;; byte offset of the current 4 positions within a row / within base
    (local $rowBytes i32)     ;; bytes per out row: 4 * M
    (local $row0 i32)         ;; address of out row (t*in + c), column 0
    (local $c i32)            ;; byte offset of the current 4 channels within a pixel
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32)  ;; the 4 positions' pixels in x
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local $dst i32)

    (local.set $rowBytes (i32.shl (local.get $m) (i32.const 2)))

    ;; for (ti = 0; ti < T; ti++)
    (local.set $ti (i32.const 0))
    (block $tDone (loop $tLoop
      (br_if $tDone (i32.ge_u (local.get $ti) (local.get $t)))
      (local.set $tapOff (i32.load (i32.add (local.get $taps) (i32.shl (local.get $ti) (i32.const 2)))))
      ;; out rows of this tap start at out + ti * in * rowBytes = out + ti * (pixelBytes / 4) * rowBytes
      (local.set $row0
        (i32.add (local.get $out)
          (i32.mul (i32.mul (local.get $ti) (i32.shr_u (local.get $pixelBytes) (i32.const 2))) (local.get $rowBytes))))

      ;; for (mi = 0; mi < 4*M; mi += 16): positions m..m+3
      (local.set $mi (i32.const 0))
      (block $mDone (loop $mLoop
        (br_if $mDone (i32.ge_u (local.get $mi) (local.get $rowBytes)))
        (local.set $a0 (i32.add (i32.add (local.get $x) (local.get $tapOff))
          (i32.load (i32.add (local.get $base) (local.get $mi)))))
        (local.set $a1 (i32.add (i32.add (local.get $x) (local.get $tapOff))
          (i32.load offset=4 (i32.add (local.get $base) (local.get $mi)))))
        (local.set $a2 (i32.add (i32.add (local.get $x) (local.get $tapOff))
          (i32.load offset=8 (i32.add (local.get $base) (local.get $mi)))))
        (local.set $a3 (i32.add (i32.add (local.get $x) (local.get $tapOff))
          (i32.load offset=12 (i32.add (local.get $base) (local.get $mi)))))

        ;; for (c = 0; c < pixelBytes; c += 16): channels c/4 .. c/4+3
        (local.set $dst (i32.add (local.get $row0) (local.get $mi)))
        (local.set $c (i32.const 0))
        (block $cDone (loop $cLoop
          (br_if $cDone (i32.ge_u (local.get $c) (local.get $pixelBytes)))
          (local.set $v0 (v128.load (i32.add (local.get $a0) (local.get $c))))
          (local.set $v1 (v128.load (i32.add (local.get $a1) (local.get $c))))
          (local.set $v2 (v128.load (i32.add (local.get $a2) (local.get $c))))
          (local.set $v3 (v128.load (i32.add (local.get $a3) (local.get $c))))
          ;; 4x4 transpose (lanes are 32-bit; shuffles name bytes of the two operands, 0-15 and 16-31)
          ;; t0 = (v0[0], v1[0], v0[1], v1[1]), t1 = (v2[0], v3[0], v2[1], v3[1])
          ;; t2 = (v0[2], v1[2], v0[3], v1[3]), t3 = (v2[2], v3[2], v2[3], v3[3])
          (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v0) (local.get $v1)))
          (local.set $t1 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v2) (local.get $v3)))
          (local.set $t2 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v0) (local.get $v1)))
          (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v2) (local.get $v3)))
          ;; channel j of the 4 positions goes to row (t*in + c/4 + j), columns m..m+3
          (v128.store (local.get $dst)
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t1)))
          (v128.store (i32.add (local.get $dst) (local.get $rowBytes))
            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t1)))
          (v128.store (i32.add (local.get $dst) (i32.shl (local.get $rowBytes) (i32.const 1)))
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t2) (local.get $t3)))
          (v128.store (i32.add (local.get $dst) (i32.mul (local.get $rowBytes) (i32.const 3)))
            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t2) (local.get $t3)))
          (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $rowBytes) (i32.const 2))))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (br $cLoop)))

        (local.set $mi (i32.add (local.get $mi) (i32.const 16)))
        (br $mLoop)))

      (local.set $ti (i32.add (local.get $ti) (i32.const 1)))
      (br $tLoop)))
  )
)
