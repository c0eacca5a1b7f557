#!/usr/bin/env node
console.log('ddp');
