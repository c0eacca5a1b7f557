;; The filter gradient of a convolution with a small patch, in WebAssembly SIMD, on the tfjs heap.
;; Loaded by ../simd-small-patch-filter-grad.ts; assembled by scripts/assemble-wat.mjs (wabt) at
;; build time.
;;
;;   dW[y, x, i, o] = sum over (b, p, q) of X[b, p*sh + y, q*sw + x, i] * dY[b, p, q, o]
;;
;; Valid padding only: every window lies inside X (the caller checks).
;;
;; Memory layout (byte addresses into the imported heap, env.memory; all float32, NHWC):
;;   x   X  [n, h, w, ci]; an image row is $xRowBytes = w*ci*4 bytes. One row of a window,
;;       kw pixels of ci channels, is kw*ci contiguous floats: the window's "row taps".
;;   dy  dY [n, oh, ow, co]; a pixel is $pixelBytes = co*4 bytes.
;;   dw  dW [kh, kw, ci, co]: one row of co floats ($pixelBytes) per tap t = (y*kw + x)*ci + i,
;;       i.e. tap row y holds the kw*ci row taps of window row y in X's order. Written here.
;;
;; How: the output channels go in groups of 8 (two f32x4 vectors: $d0, $d1 hold dY[b, p, q, g..g+7]).
;; For a chunk of up to 4 consecutive row taps, the 4 x 8 partial sums of dW stay in SIMD locals
;; (8 vectors, few enough to stay in registers) while q runs along one output row; each tap costs
;; one f32 load, a splat, two multiplies and two adds per output pixel. The partial sums live in
;; dW between chunks (zeroed first). Loops, outermost first:
;;
;;   b, p      one output row at a time, so its dY (ow * pixelBytes) and the X rows under it stay
;;             in the L1 cache while every group and chunk below reads them again
;;   g         channel group: byte offset 0, 32, ... < co*4 (co is a multiple of 8)
;;   y, j      window row y, and its row taps j..j+3 (fewer at the end of the row)
;;   q         output column: the inner loop
;;
;; Each dW element is summed in the same order as a plain loop over (b, p, q), in float32, with a
;; separate multiply and add (no fused multiply-add), starting from +0: the result does not depend
;; on the blocking.
(module
  (import "env" "memory" (memory 1))

  (func (export "filterGrad")
    (param $x i32) (param $dy i32) (param $dw i32)
    (param $n i32) (param $h i32) (param $w i32)
    (param $oh i32) (param $ow i32)
    (param $co i32)           ;; out-channels, a multiple of 8
    (param $sh i32) (param $sw i32)
    (param $kh i32) (param $kw i32) (param $ci i32)
    (local $rowTaps i32)      ;; kw * ci: taps per window row, contiguous in X
    (local $xRowBytes i32)    ;; w * ci * 4
    (local $xStep i32)        ;; sw * ci * 4: from one window to the next along q
    (local $pixelBytes i32)   ;; co * 4: a dY pixel, a dW tap row
    (local $b i32) (local $p i32) (local $g i32) (local $y i32) (local $j i32) (local $q i32)
    (local $taps i32)         ;; row taps left from j to the end of the window row (>= 1)
    (local $xRow i32)         ;; X[b, p*sh, 0, 0]: the top-left of the output row's first window
    (local $dyRow i32)        ;; dY[b, p, 0, 0]
    (local $xq i32)           ;; X address of row tap j of window row y, in window q
    (local $dyq i32)          ;; dY[b, p, q, g]
    (local $acc i32)          ;; dW address of tap (y, j), group g; taps j+1.. follow at +pixelBytes
    (local $end i32)
    (local $d0 v128) (local $d1 v128)  ;; dY[b, p, q, g..g+3], dY[b, p, q, g+4..g+7]
    (local $s v128)                    ;; one X value, splat to 4 lanes
    ;; partial sums of dW for row taps j+k, k = 0..3, in channels g..g+3 (_0) and g+4..g+7 (_1)
    (local $a0_0 v128) (local $a0_1 v128)
    (local $a1_0 v128) (local $a1_1 v128)
    (local $a2_0 v128) (local $a2_1 v128)
    (local $a3_0 v128) (local $a3_1 v128)

    (local.set $rowTaps (i32.mul (local.get $kw) (local.get $ci)))
    (local.set $xRowBytes (i32.mul (i32.mul (local.get $w) (local.get $ci)) (i32.const 4)))
    (local.set $xStep (i32.mul (i32.mul (local.get $sw) (local.get $ci)) (i32.const 4)))
    (local.set $pixelBytes (i32.mul (local.get $co) (i32.const 4)))

    ;; dW = 0: kh * rowTaps rows of pixelBytes (a multiple of 32), 16 bytes at a time.
    (local.set $acc (local.get $dw))
    (local.set $end
      (i32.add (local.get $dw)
        (i32.mul (i32.mul (local.get $kh) (local.get $rowTaps)) (local.get $pixelBytes))))
    (block $zeroDone (loop $zero
      (br_if $zeroDone (i32.ge_u (local.get $acc) (local.get $end)))
      (v128.store (local.get $acc) (v128.const i32x4 0 0 0 0))
      (local.set $acc (i32.add (local.get $acc) (i32.const 16)))
      (br $zero)))

    ;; for (b = 0; b < n; b++)
    (local.set $b (i32.const 0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $n)))

      ;; for (p = 0; p < oh; p++): one output row
      (local.set $p (i32.const 0))
      (block $pDone (loop $pLoop
        (br_if $pDone (i32.ge_u (local.get $p) (local.get $oh)))
        ;; xRow = x + (b*h + p*sh) * xRowBytes; dyRow = dy + (b*oh + p) * ow * pixelBytes
        (local.set $xRow
          (i32.add (local.get $x)
            (i32.mul
              (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.mul (local.get $p) (local.get $sh)))
              (local.get $xRowBytes))))
        (local.set $dyRow
          (i32.add (local.get $dy)
            (i32.mul
              (i32.mul (i32.add (i32.mul (local.get $b) (local.get $oh)) (local.get $p)) (local.get $ow))
              (local.get $pixelBytes))))

        ;; for (g = 0; g < pixelBytes; g += 32): 8 output channels
        (local.set $g (i32.const 0))
        (block $gDone (loop $gLoop
          (br_if $gDone (i32.ge_u (local.get $g) (local.get $pixelBytes)))

          ;; for (y = 0; y < kh; y++): window row
          (local.set $y (i32.const 0))
          (block $yDone (loop $yLoop
            (br_if $yDone (i32.ge_u (local.get $y) (local.get $kh)))

            ;; for (j = 0; j < rowTaps; j += 4): a chunk of up to 4 row taps
            (local.set $j (i32.const 0))
            (block $jDone (loop $jLoop
              (br_if $jDone (i32.ge_u (local.get $j) (local.get $rowTaps)))
              (local.set $taps (i32.sub (local.get $rowTaps) (local.get $j)))

              ;; acc = dw + (y*rowTaps + j) * pixelBytes + g: load the chunk's partial sums
              (local.set $acc
                (i32.add
                  (i32.add (local.get $dw)
                    (i32.mul
                      (i32.add (i32.mul (local.get $y) (local.get $rowTaps)) (local.get $j))
                      (local.get $pixelBytes)))
                  (local.get $g)))
              (block $loaded
                (local.set $a0_0 (v128.load (local.get $acc)))
                (local.set $a0_1 (v128.load offset=16 (local.get $acc)))
                (br_if $loaded (i32.lt_u (local.get $taps) (i32.const 2)))
                (local.set $a1_0 (v128.load (i32.add (local.get $acc) (local.get $pixelBytes))))
                (local.set $a1_1 (v128.load offset=16 (i32.add (local.get $acc) (local.get $pixelBytes))))
                (br_if $loaded (i32.lt_u (local.get $taps) (i32.const 3)))
                (local.set $a2_0 (v128.load (i32.add (local.get $acc) (i32.mul (local.get $pixelBytes) (i32.const 2)))))
                (local.set $a2_1 (v128.load offset=16 (i32.add (local.get $acc) (i32.mul (local.get $pixelBytes) (i32.const 2)))))
                (br_if $loaded (i32.lt_u (local.get $taps) (i32.const 4)))
                (local.set $a3_0 (v128.load (i32.add (local.get $acc) (i32.mul (local.get $pixelBytes) (i32.const 3)))))
                (local.set $a3_1 (v128.load offset=16 (i32.add (local.get $acc) (i32.mul (local.get $pixelBytes) (i32.const 3))))))

              ;; xq = xRow + y*xRowBytes + j*4 (window q = 0); dyq = dyRow + g
              (local.set $xq
                (i32.add
                  (i32.add (local.get $xRow) (i32.mul (local.get $y) (local.get $xRowBytes)))
                  (i32.mul (local.get $j) (i32.const 4))))
              (local.set $dyq (i32.add (local.get $dyRow) (local.get $g)))

              ;; for (q = 0; q < ow; q++): a[k] += X[row tap j+k of window q] * dY[b, p, q, g..g+7]
              (local.set $q (i32.const 0))
              (block $qDone (loop $qLoop
                (br_if $qDone (i32.ge_u (local.get $q) (local.get $ow)))
                (local.set $d0 (v128.load (local.get $dyq)))
                (local.set $d1 (v128.load offset=16 (local.get $dyq)))
                (block $tapsDone
                  (local.set $s (f32x4.splat (f32.load (local.get $xq))))
                  (local.set $a0_0 (f32x4.add (local.get $a0_0) (f32x4.mul (local.get $s) (local.get $d0))))
                  (local.set $a0_1 (f32x4.add (local.get $a0_1) (f32x4.mul (local.get $s) (local.get $d1))))
                  (br_if $tapsDone (i32.lt_u (local.get $taps) (i32.const 2)))
                  (local.set $s (f32x4.splat (f32.load offset=4 (local.get $xq))))
                  (local.set $a1_0 (f32x4.add (local.get $a1_0) (f32x4.mul (local.get $s) (local.get $d0))))
                  (local.set $a1_1 (f32x4.add (local.get $a1_1) (f32x4.mul (local.get $s) (local.get $d1))))
                  (br_if $tapsDone (i32.lt_u (local.get $taps) (i32.const 3)))
                  (local.set $s (f32x4.splat (f32.load offset=8 (local.get $xq))))
                  (local.set $a2_0 (f32x4.add (local.get $a2_0) (f32x4.mul (local.get $s) (local.get $d0))))
                  (local.set $a2_1 (f32x4.add (local.get $a2_1) (f32x4.mul (local.get $s) (local.get $d1))))
                  (br_if $tapsDone (i32.lt_u (local.get $taps) (i32.const 4)))
                  (local.set $s (f32x4.splat (f32.load offset=12 (local.get $xq))))
                  (local.set $a3_0 (f32x4.add (local.get $a3_0) (f32x4.mul (local.get $s) (local.get $d0))))
                  (local.set $a3_1 (f32x4.add (local.get $a3_1) (f32x4.mul (local.get $s) (local.get $d1)))))
                (local.set $xq (i32.add (local.get $xq) (local.get $xStep)))
                (local.set $dyq (i32.add (local.get $dyq) (local.get $pixelBytes)))
                (local.set $q (i32.add (local.get $q) (i32.const 1)))
                (br $qLoop)))

              ;; store the chunk's partial sums back into dW
              (block $stored
                (v128.store (local.get $acc) (local.get $a0_0))
                (v128.store offset=16 (local.get $acc) (local.get $a0_1))
                (br_if $stored (i32.lt_u (local.get $taps) (i32.const 2)))
                (v128.store (i32.add (local.get $acc) (local.get $pixelBytes)) (local.get $a1_0))
                (v128.store offset=16 (i32.add (local.get $acc) (local.get $pixelBytes)) (local.get $a1_1))
                (br_if $stored (i32.lt_u (local.get $taps) (i32.const 3)))
                (v128.store (i32.add (local.get $acc) (i32.mul (local.get $pixelBytes) (i32.const 2))) (local.get $a2_0))
                (v128.store offset=16 (i32.add (local.get $acc) (i32.mul (local.get $pixelBytes) (i32.const 2))) (local.get $a2_1))
                (br_if $stored (i32.lt_u (local.get $taps) (i32.const 4)))
                (v128.store (i32.add (local.get $acc) (i32.mul (local.get $pixelBytes) (i32.const 3))) (local.get $a3_0))
                (v128.store offset=16 (i32.add (local.get $acc) (i32.mul (local.get $pixelBytes) (i32.const 3))) (local.get $a3_1)))

              (local.set $j (i32.add (local.get $j) (i32.const 4)))
              (br $jLoop)))

            (local.set $y (i32.add (local.get $y) (i32.const 1)))
            (br $yLoop)))

          (local.set $g (i32.add (local.get $g) (i32.const 32)))
          (br $gLoop)))

        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $pLoop)))

      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop)))
  )
)
