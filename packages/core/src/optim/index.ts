export * from './adam.js';
