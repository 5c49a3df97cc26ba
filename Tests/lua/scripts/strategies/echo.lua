-- A stand-in strategy for the tests: returns what it was given, and records that it ran.
return function(model, item, opts)
  return {answer = item, model = model.info.arch, injected = {}, opts = opts}
end
