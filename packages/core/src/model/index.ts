export * from './seed-cnn-layout.js';
export * from './init.js';
export * from './seed-cnn.js';
export * from './keras-model.js';
export * from './save.js';
export * from './evaluate.js';
export * from './reduction.js';
export * from './predict.js';
