import http from 'k6/http';
import { check } from 'k6';

export const options = {
  vus: 2,
  iterations: 100,
  thresholds: {
    'http_req_duration{name:home}': ['p(99)<1000'],
    'http_req_duration{group:::api}': [{ threshold: 'p(95)<300', abortOnFail: true, delayAbortEval: '10s' }],
    'checks{check:home ok}': ['rate>0.99'],
    checks: ['rate>0.9'],
    iterations: ['count>=100'],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(99)', 'max'],
};

export default function () {
  const res = http.get('http://localhost/', { tags: { name: 'home' } });
  check(res, { 'home ok': (r) => r.status === 200 });
  group('api', function () {
    http.get('http://localhost/json');
  });
}

import { group } from 'k6';
