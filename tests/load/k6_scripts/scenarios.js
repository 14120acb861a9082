import http from 'k6/http';
import { sleep } from 'k6';

const BASE = 'http://api.internal:8080';

export const options = {
  scenarios: {
    browse: {
      executor: 'constant-arrival-rate',
      rate: 50,
      timeUnit: '1s',
      duration: '30s',
      preAllocatedVUs: 10,
      maxVUs: 50,
      exec: 'browse',
      tags: { kind: 'read' },
    },
    write: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [{ duration: '20s', target: 5 }, { duration: '10s', target: 0 }],
      gracefulRampDown: '5s',
      startTime: '10s',
      exec: 'write',
      env: { ITEM: 'widget' },
    },
  },
};

export function browse() {
  http.get(`${BASE}/records?limit=100`);
}

export function write() {
  http.post(`${BASE}/records`, JSON.stringify({ name: __ENV.ITEM, qty: 2 }), {
    headers: { 'Content-Type': 'application/json' },
  });
  sleep(2);
}
