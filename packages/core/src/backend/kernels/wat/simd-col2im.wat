;; col2im in WebAssembly SIMD, on the tfjs wasm heap: adds patch gradients into an image gradient.
;; Loaded by ../simd-col2im.ts; assembled by scripts/assemble-wat.mjs (wabt) at build time.
;;
;; Memory layout (byte addresses into the imported heap, env.memory; all float32):
;;   cols  the patch gradients [n, oh, ow, kh, kw, in]: for each output position (b, p, q), the
;;         kh*kw taps of its window, each tap one pixel of `in` channels ($pixelBytes = 4*in bytes,
;;         a multiple of 16). Read once, in order, by the running pointer $src.
;;   dx    the input gradient [n, h, w, in] (NHWC), zero-filled by the caller.
;;
;;   for b, p, q, y, x:                  (b < n, p < oh, q < ow, y < kh, x < kw)
;;     row = p*sh + y - top, col = q*sw + x - left
;;     if the tap is inside the image:   dx[b, row, col, :] += cols[b, p, q, y, x, :]
;;
;; Taps that fall on padding (row or col outside the image) are skipped; one unsigned compare
;; catches both ends, as a negative row or col is a huge unsigned number.
(module
  (import "env" "memory" (memory 1))

  (func (export "col2im")
    (param $cols i32) (param $dx i32)
    (param $n i32) (param $h i32) (param $w i32)
    (param $pixelBytes i32)   ;; bytes per dx pixel: 4 * in, a multiple of 16
    (param $oh i32) (param $ow i32)
    (param $kh i32) (param $kw i32)
    (param $sh i32) (param $sw i32)
    (param $top i32) (param $left i32)  ;; padding before the first row / column
    (local $b i32) (local $p i32) (local $q i32)  ;; output position
    (local $y i32) (local $x i32)                 ;; tap within the window
    (local $i i32)            ;; byte offset of the current 4 channels within a pixel
    (local $row i32) (local $col i32)             ;; the tap's dx pixel
    (local $src i32)          ;; the current tap in cols: walks cols from start to end
    (local $dst i32)          ;; the tap's pixel in dx

    (local.set $src (local.get $cols))

    ;; for (b = 0; b < n; b++)
    (local.set $b (i32.const 0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $n)))

      ;; for (p = 0; p < oh; p++)
      (local.set $p (i32.const 0))
      (block $pDone (loop $pLoop
        (br_if $pDone (i32.ge_u (local.get $p) (local.get $oh)))

        ;; for (q = 0; q < ow; q++)
        (local.set $q (i32.const 0))
        (block $qDone (loop $qLoop
          (br_if $qDone (i32.ge_u (local.get $q) (local.get $ow)))

          ;; for (y = 0; y < kh; y++)
          (local.set $y (i32.const 0))
          (block $yDone (loop $yLoop
            (br_if $yDone (i32.ge_u (local.get $y) (local.get $kh)))

            ;; row = p*sh + y - top
            (local.set $row
              (i32.sub (i32.add (i32.mul (local.get $p) (local.get $sh)) (local.get $y)) (local.get $top)))

            ;; for (x = 0; x < kw; x++)
            (local.set $x (i32.const 0))
            (block $xDone (loop $xLoop
              (br_if $xDone (i32.ge_u (local.get $x) (local.get $kw)))

              ;; col = q*sw + x - left
              (local.set $col
                (i32.sub (i32.add (i32.mul (local.get $q) (local.get $sw)) (local.get $x)) (local.get $left)))

              ;; inside the image: 0 <= row < h and 0 <= col < w (unsigned compares)
              (if (i32.and (i32.lt_u (local.get $row) (local.get $h)) (i32.lt_u (local.get $col) (local.get $w)))
                (then
                  ;; dst = dx + ((b*h + row)*w + col) * pixelBytes
                  (local.set $dst
                    (i32.add (local.get $dx)
                      (i32.mul
                        (i32.add
                          (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $row)) (local.get $w))
                          (local.get $col))
                        (local.get $pixelBytes))))

                  ;; for (i = 0; i < pixelBytes; i += 16): dst[i..i+3] += src[i..i+3]
                  (local.set $i (i32.const 0))
                  (block $iDone (loop $iLoop
                    (br_if $iDone (i32.ge_u (local.get $i) (local.get $pixelBytes)))
                    (v128.store (i32.add (local.get $dst) (local.get $i))
                      (f32x4.add
                        (v128.load (i32.add (local.get $dst) (local.get $i)))
                        (v128.load (i32.add (local.get $src) (local.get $i)))))
                    (local.set $i (i32.add (local.get $i) (i32.const 16)))
                    (br $iLoop)))))

              ;; the next tap in cols, whether it was added or skipped
              (local.set $src (i32.add (local.get $src) (local.get $pixelBytes)))
              (local.set $x (i32.add (local.get $x) (i32.const 1)))
              (br $xLoop)))

            (local.set $y (i32.add (local.get $y) (i32.const 1)))
            (br $yLoop)))

          (local.set $q (i32.add (local.get $q) (i32.const 1)))
          (br $qLoop)))

        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $pLoop)))

      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop)))
  )
)
