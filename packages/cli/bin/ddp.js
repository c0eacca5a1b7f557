#!/usr/bin/env node
// Checked-in shim so that npm can link the `ddp` bin before the TypeScript build has run.
import('../dist/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    console.error('ddp: not built yet; run `npm install` (or `npm run build`) at the repository root');
    process.exit(2);
  }
  throw err;
});
