;; MaxPoolGrad for 2x2 windows at stride 2, in WebAssembly SIMD, on the tfjs wasm heap.
;; Loaded by ../simd-max-pool-grad.ts; assembled by scripts/assemble-wat.mjs (wabt) at build time.
;;
;; Memory layout (all addresses are byte addresses into the imported heap, env.memory):
;;   x   one image of the pooled input, NHWC without the N: [h, w, c] float32; a pixel is
;;       $pixelBytes = 4*c bytes (a multiple of 16: c is a multiple of 4), a row $rowBytes = w*pixelBytes.
;;   dy  the same image's output gradient [oh, ow, c], pixels packed one after the other.
;;   dx  the input gradient [h, w, c], same layout as x. Every pixel covered by a window is
;;       written (the windows tile the image), so dx need not be zeroed; the caller zeroes the
;;       odd last row/column that no window covers.
;;
;; Window (py, px) covers x pixels (2py, 2px) a, (2py, 2px+1) p, (2py+1, 2px) q, (2py+1, 2px+1) r.
;; Its dy goes to the first maximum in row-major order (a, p, q, r) with strict '>' (so ties,
;; including -0 vs +0, keep the earlier position), as in the tfjs cpu kernel; the other three get +0.
;; Four channels at a time: compares give lane masks, so there is no data-dependent branch.
;;
;; Returns 1 if some window holds a NaN or has -Infinity as its maximum (where the cpu rules get
;; subtle); the caller then recomputes the whole tensor with its careful JS loop. Otherwise 0.
(module
  (import "env" "memory" (memory 1))

  (func (export "maxPoolGrad2x2")
    (param $x i32) (param $dy i32) (param $dx i32)
    (param $oh i32) (param $ow i32)
    (param $pixelBytes i32)   ;; 4 * channels, a multiple of 16
    (param $rowBytes i32)     ;; bytes per input row: w * pixelBytes
    (result i32)
    (local $py i32) (local $px i32)
    (local $d i32)            ;; byte offset of the current 4 channels within a pixel
    (local $xw i32)           ;; address of channels d..d+3 of the window's top-left pixel a
    (local $gp i32)           ;; address of the current dy pixel
    (local $toDx i32)         ;; dx - x: the same element's address in dx, from its address in x
    (local $a v128) (local $p v128) (local $q v128) (local $r v128)  ;; the window's 4 values, 4 channels
    (local $s1 v128)          ;; lanes where p > a      (p is the maximum of the top row)
    (local $s2 v128)          ;; lanes where r > q      (r is the maximum of the bottom row)
    (local $s3 v128)          ;; lanes where max(q, r) > max(a, p)  (the maximum is in the bottom row)
    (local $m01 v128) (local $m23 v128)  ;; max(a, p), max(q, r) as picked by s1, s2
    (local $g v128)           ;; dy for the 4 channels
    (local $bad v128)         ;; any lane ever set: some window had a NaN or a -Infinity maximum
    (local $negInf v128)

    (local.set $negInf (f32x4.splat (f32.const -inf)))
    (local.set $toDx (i32.sub (local.get $dx) (local.get $x)))
    (local.set $gp (local.get $dy))

    ;; for (py = 0; py < oh; py++)
    (local.set $py (i32.const 0))
    (block $rowsDone (loop $rows
      (br_if $rowsDone (i32.ge_u (local.get $py) (local.get $oh)))

      ;; for (px = 0; px < ow; px++)
      (local.set $px (i32.const 0))
      (block $colsDone (loop $cols
        (br_if $colsDone (i32.ge_u (local.get $px) (local.get $ow)))

        ;; for (d = 0; d < pixelBytes; d += 16): four channels per iteration
        (local.set $d (i32.const 0))
        (block $chanDone (loop $chan
          (br_if $chanDone (i32.ge_u (local.get $d) (local.get $pixelBytes)))

          ;; xw = x + py*2*rowBytes + px*2*pixelBytes + d
          (local.set $xw
            (i32.add
              (i32.add
                (i32.add (local.get $x)
                  (i32.mul (i32.mul (local.get $py) (local.get $rowBytes)) (i32.const 2)))
                (i32.mul (i32.mul (local.get $px) (local.get $pixelBytes)) (i32.const 2)))
              (local.get $d)))
          (local.set $a (v128.load (local.get $xw)))
          (local.set $p (v128.load (i32.add (local.get $xw) (local.get $pixelBytes))))
          (local.set $q (v128.load (i32.add (local.get $xw) (local.get $rowBytes))))
          (local.set $r (v128.load
            (i32.add (i32.add (local.get $xw) (local.get $rowBytes)) (local.get $pixelBytes))))
          (local.set $g (v128.load (i32.add (local.get $gp) (local.get $d))))

          ;; The first maximum, by strict compares: a tie keeps the earlier position.
          (local.set $s1 (f32x4.gt (local.get $p) (local.get $a)))
          (local.set $s2 (f32x4.gt (local.get $r) (local.get $q)))
          (local.set $m01 (v128.bitselect (local.get $p) (local.get $a) (local.get $s1)))
          (local.set $m23 (v128.bitselect (local.get $r) (local.get $q) (local.get $s2)))
          (local.set $s3 (f32x4.gt (local.get $m23) (local.get $m01)))

          ;; bad |= (any of a, p, q, r is NaN: v != v) | (the window's maximum == -Infinity)
          (local.set $bad
            (v128.or (local.get $bad)
              (v128.or
                (v128.not
                  (v128.and
                    (v128.and (f32x4.eq (local.get $a) (local.get $a)) (f32x4.eq (local.get $p) (local.get $p)))
                    (v128.and (f32x4.eq (local.get $q) (local.get $q)) (f32x4.eq (local.get $r) (local.get $r)))))
                (f32x4.eq
                  (v128.bitselect (local.get $m23) (local.get $m01) (local.get $s3))
                  (local.get $negInf)))))

          ;; dx of each position: g in the lanes where it is the first maximum, +0 elsewhere.
          ;; v128.andnot(u, v) is u & ~v.
          ;; a: not p (~s1), not the bottom row (~s3)
          (v128.store (i32.add (local.get $xw) (local.get $toDx))
            (v128.and (local.get $g) (v128.andnot (v128.not (local.get $s1)) (local.get $s3))))
          ;; p: s1 & ~s3
          (v128.store (i32.add (i32.add (local.get $xw) (local.get $toDx)) (local.get $pixelBytes))
            (v128.and (local.get $g) (v128.andnot (local.get $s1) (local.get $s3))))
          ;; q: s3 & ~s2
          (v128.store (i32.add (i32.add (local.get $xw) (local.get $toDx)) (local.get $rowBytes))
            (v128.and (local.get $g) (v128.andnot (local.get $s3) (local.get $s2))))
          ;; r: s3 & s2
          (v128.store
            (i32.add (i32.add (i32.add (local.get $xw) (local.get $toDx)) (local.get $rowBytes)) (local.get $pixelBytes))
            (v128.and (local.get $g) (v128.and (local.get $s3) (local.get $s2))))

          (local.set $d (i32.add (local.get $d) (i32.const 16)))
          (br $chan)))

        ;; the next dy pixel
        (local.set $gp (i32.add (local.get $gp) (local.get $pixelBytes)))
        (local.set $px (i32.add (local.get $px) (i32.const 1)))
        (br $cols)))

      (local.set $py (i32.add (local.get $py) (i32.const 1)))
      (br $rows)))

    (v128.any_true (local.get $bad)))
)
