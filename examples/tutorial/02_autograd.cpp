// Tutorial step 2 — autograd (docs/tutorial/02_autograd.md).
//
//   build/examples/tutorial_02_autograd
//
// Mark the leaves that need a gradient, compute a scalar, call backward(): every leaf's
// .grad() then holds d(scalar)/d(leaf). Here: least squares, whose gradient we also know in
// closed form, then a few steps of gradient descent, then the error autograd raises when a
// tensor it saved is changed in place.
#include <cstdio>
#include <iostream>

#include "rotor/rotor.h"

using namespace rotor;

int main() {
  Generator gen(0);
  Tensor x = randn({8, 3}, gen);                        // 8 samples, 3 features
  Tensor w_true = from_vector<float>({2, -1, 0.5}, {3, 1});
  Tensor y = matmul(x, w_true);                          // targets of an exact linear model

  // 1. A leaf that requires grad, a loss, backward.
  Tensor w = zeros({3, 1}).requires_grad_();
  Tensor loss = mean(square(matmul(x, w) - y));
  loss.backward();
  std::cout << "loss " << loss.item() << "\ngrad " << w.grad() << "\n";

  // The same gradient by hand: d/dw mean((xw - y)^2) = 2/N x^T (xw - y).
  Tensor by_hand = matmul(transpose(x, 0, 1), matmul(x, w.detach()) - y) * (2.0 / 8.0);
  std::cout << "2/N x^T (xw - y) " << by_hand << "\n";

  // 2. Gradient descent: update under NoGradGuard (no graph), clear the gradient each step.
  for (int step = 1; step <= 60; ++step) {
    Tensor l = mean(square(matmul(x, w) - y));
    w.zero_grad();
    l.backward();
    {
      NoGradGuard no_grad;
      add_(w, w.grad(), -0.2);  // w -= 0.2 * grad
    }
    if (step % 20 == 0) std::printf("step %d  loss %.6f\n", step, l.item());
  }
  std::cout << "w after descent " << w << "\n";

  // 3. Gradients of broadcast inputs are summed back to the input's shape.
  Tensor b = zeros({1}).requires_grad_();
  sum(x + b).backward();  // b is added to all 24 elements
  std::cout << "d sum(x + b)/db = " << b.grad() << "\n";

  // 4. A tensor saved for the backward and then modified in place is caught.
  Tensor p = ones({3}).requires_grad_();
  Tensor q = p * 3.0;    // q does not need saving for its own backward ...
  Tensor r = sum(q * q);  // ... but q * q saves q
  {
    NoGradGuard no_grad;
    add_(q, ones({3}));  // changes q after it was saved
  }
  try {
    r.backward();
  } catch (const Error& e) {
    std::printf("error: %s\n", e.what());
  }
}
